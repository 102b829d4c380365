/* === kernels: x86-64 AVX2+FMA and AVX-512 variants === */
/*
 * Every function here carries its own target attribute, so the file compiles without -mavx2
 * and the tables are only handed out after CPUID + XGETBV say the CPU and OS support them.
 */
#include "02_kernels.h"

#if defined(FTI__X86)
FTI__X86_WARN_PUSH /* g++ false positives in its AVX-512 headers (00_base.h) */
#include <immintrin.h>
#include <cpuid.h>

static uint64_t fti__xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static unsigned fti__cpu_features_x86(void) {
    unsigned a, b, c, d, f = 0, max_leaf;
    uint64_t xcr0;
    if (!__get_cpuid(0, &max_leaf, &b, &c, &d)) return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1u << 27)) || !(c & (1u << 28))) return 0; /* OSXSAVE and AVX */
    xcr0 = fti__xgetbv0();
    if ((xcr0 & 6u) != 6u) return 0; /* the OS saves XMM and YMM state */
    if (c & (1u << 12)) f |= FTI_CPU_FMA;
    if (c & (1u << 29)) f |= FTI_CPU_F16C;
    if (max_leaf < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    if (b & (1u << 5)) f |= FTI_CPU_AVX2;
    if ((xcr0 & 0xe0u) == 0xe0u) { /* opmask and ZMM state */
        if (b & (1u << 16)) f |= FTI_CPU_AVX512F;
        if (b & (1u << 17)) f |= FTI_CPU_AVX512DQ;
        if (b & (1u << 30)) f |= FTI_CPU_AVX512BW;
        if (b & (1u << 31)) f |= FTI_CPU_AVX512VL;
        if (c & (1u << 11)) f |= FTI_CPU_AVX512VNNI;
        if (c & (1u << 1)) f |= FTI_CPU_AVX512VBMI;
        if (c & (1u << 8)) f |= FTI_CPU_GFNI;
        __cpuid_count(7, 1, a, b, c, d);
        if (a & (1u << 5)) f |= FTI_CPU_AVX512BF16;
    }
    return f;
}

#define FTI__AVX2 __attribute__((target("avx2,fma,f16c")))
#define FTI__AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define FTI__VNNI                                                                                  \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,gfni,avx2,fma,f16c")))

/* --- AVX2 + FMA ------------------------------------------------------------------------------- */

FTI__AVX2 static float fti__hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

FTI__AVX2 static int32_t fti__hsum_epi32_avx2(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* GEMM micro-kernel 6×16: 12 ymm accumulators, B row in two ymm, A broadcast per row. */
#define FTI__UK2_ROW(i)                                                                            \
    do {                                                                                           \
        t = _mm256_broadcast_ss(a + i);                                                            \
        c##i##_0 = _mm256_fmadd_ps(t, b0, c##i##_0);                                               \
        c##i##_1 = _mm256_fmadd_ps(t, b1, c##i##_1);                                               \
    } while (0)
#define FTI__UK2_STORE(i)                                                                          \
    do {                                                                                           \
        float *ci = c + (i)*ldc;                                                                   \
        if (acc) {                                                                                 \
            c##i##_0 = _mm256_add_ps(_mm256_loadu_ps(ci), c##i##_0);                               \
            c##i##_1 = _mm256_add_ps(_mm256_loadu_ps(ci + 8), c##i##_1);                           \
        }                                                                                          \
        _mm256_storeu_ps(ci, c##i##_0);                                                            \
        _mm256_storeu_ps(ci + 8, c##i##_1);                                                        \
    } while (0)

FTI__AVX2 static void fti__ukernel_avx2(size_t kc, const float *a, const float *b, float *c,
                                        size_t ldc, int acc) {
    __m256 c0_0 = _mm256_setzero_ps(), c0_1 = c0_0, c1_0 = c0_0, c1_1 = c0_0, c2_0 = c0_0,
           c2_1 = c0_0, c3_0 = c0_0, c3_1 = c0_0, c4_0 = c0_0, c4_1 = c0_0, c5_0 = c0_0,
           c5_1 = c0_0, b0, b1, t;
    size_t p;
    /* C's tile is read (acc) and written only after the k loop: on Zen 3 its rows are often
     * in L3 by then (C is reloaded once per K block), so ask for them now (both ends of each
     * row: an unaligned row spans two lines) */
    for (p = 0; p < 6; p++) {
        __builtin_prefetch(c + p * ldc, 1, 3);
        __builtin_prefetch(c + p * ldc + 15, 1, 3);
    }
    for (p = 0; p < kc; p++, a += 6, b += 16) {
        b0 = _mm256_loadu_ps(b);
        b1 = _mm256_loadu_ps(b + 8);
        FTI__UK2_ROW(0);
        FTI__UK2_ROW(1);
        FTI__UK2_ROW(2);
        FTI__UK2_ROW(3);
        FTI__UK2_ROW(4);
        FTI__UK2_ROW(5);
    }
    FTI__UK2_STORE(0);
    FTI__UK2_STORE(1);
    FTI__UK2_STORE(2);
    FTI__UK2_STORE(3);
    FTI__UK2_STORE(4);
    FTI__UK2_STORE(5);
}

FTI__AVX2 static float fti__dot_avx2(const float *x, const float *y, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    float s;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    s = fti__hsum_avx2(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) s += x[i] * y[i];
    return s;
}

FTI__AVX2 static void fti__axpy_avx2(float *y, float a, const float *x, size_t n) {
    __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i,
                         _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

FTI__AVX2 static void fti__scale_avx2(float *x, float a, size_t n) {
    __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(va, _mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] *= a;
}

FTI__AVX2 static float fti__max_avx2(const float *x, size_t n) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    __m128 h;
    size_t i = 0;
    float r;
    for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    r = _mm_cvtss_f32(h);
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}

/* e^x: n = round(x·log2 e), r = x - n·ln 2 (two-part constant), e^r by its degree-6 Taylor
 * polynomial (|r| <= ln2/2: relative error < 2e-7), times 2^n built in the exponent bits.
 * Below -87.33 the result is 0 (including -inf), above 88.72 it is +inf; NaN stays NaN. */
FTI__AVX2 static __m256 fti__exp_avx2(__m256 x) {
    __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ);
    __m256 over = _mm256_cmp_ps(x, _mm256_set1_ps(88.72283f), _CMP_GT_OQ);
    __m256 xc =
        _mm256_min_ps(_mm256_set1_ps(88.72283f), _mm256_max_ps(_mm256_set1_ps(-87.33654f), x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r, p;
    __m256i e;
    n = _mm256_min_ps(n, _mm256_set1_ps(127.0f));
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
    p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    p = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    p = _mm256_andnot_ps(under, p);
    return _mm256_blendv_ps(p, _mm256_set1_ps(INFINITY), over);
}

FTI__AVX2 static __m256 fti__sigmoid_avx2(__m256 x) {
    __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one,
                         _mm256_add_ps(one, fti__exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

FTI__AVX2 static float fti__exp_sum_avx2(float *y, const float *x, size_t n, float sub) {
    __m256 s = _mm256_setzero_ps(), vs = _mm256_set1_ps(sub);
    size_t i = 0;
    float r;
    for (; i + 8 <= n; i += 8) {
        __m256 e = fti__exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs));
        _mm256_storeu_ps(y + i, e);
        s = _mm256_add_ps(s, e);
    }
    r = fti__hsum_avx2(s);
    for (; i < n; i++) {
        y[i] = expf(x[i] - sub);
        r += y[i];
    }
    return r;
}

FTI__AVX2 static void fti__mul_scaled_avx2(float *out, const float *x, const float *w, float s,
                                           size_t n) {
    __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    if (w) {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs),
                                                    _mm256_loadu_ps(w + i)));
    } else {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
    }
    fti__mul_scaled_ref(out + i, x + i, w ? w + i : NULL, s, n - i);
}

FTI__AVX2 static void fti__silu_fwd_avx2(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(v, fti__sigmoid_avx2(v)));
    }
    fti__silu_fwd_ref(y + i, x + i, n - i);
}

FTI__AVX2 static void fti__silu_bwd_avx2(float *dx, const float *x, const float *dy, size_t n) {
    __m256 one = _mm256_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), s = fti__sigmoid_avx2(v);
        __m256 t = _mm256_fmadd_ps(v, _mm256_sub_ps(one, s), one);
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(dy + i), s), t));
    }
    fti__silu_bwd_ref(dx + i, x + i, dy + i, n - i);
}

FTI__AVX2 static void fti__swiglu_fwd_avx2(float *h, const float *g, const float *u, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(g + i);
        _mm256_storeu_ps(
            h + i, _mm256_mul_ps(_mm256_mul_ps(v, fti__sigmoid_avx2(v)), _mm256_loadu_ps(u + i)));
    }
    fti__swiglu_fwd_ref(h + i, g + i, u + i, n - i);
}

FTI__AVX2 static void fti__swiglu_bwd_avx2(float *dg, float *du, const float *g, const float *u,
                                           const float *dh, size_t n) {
    __m256 one = _mm256_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(g + i), s = fti__sigmoid_avx2(v), d = _mm256_loadu_ps(dh + i);
        __m256 t = _mm256_fmadd_ps(v, _mm256_sub_ps(one, s), one);
        __m256 uu = _mm256_loadu_ps(u + i);
        _mm256_storeu_ps(du + i, _mm256_mul_ps(_mm256_mul_ps(d, v), s));
        _mm256_storeu_ps(dg + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(d, uu), s), t));
    }
    fti__swiglu_bwd_ref(dg + i, du + i, g + i, u + i, dh + i, n - i);
}

FTI__AVX2 static void fti__f16_to_f32_avx2(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    fti__f16_to_f32_ref(dst + i, src + i, n - i);
}

FTI__AVX2 static void fti__f32_to_f16_avx2(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    fti__f32_to_f16_ref(dst + i, src + i, n - i);
}

/* --- weight quantizers, byte for byte the references' (fti__q8_level, fti__q4_level) ----------
 * Q8_0 rounds half away from zero as t + [r >= 1/2] - [r <= -1/2] from t = trunc(v) and the
 * exact remainder r = v - t (|v| <= 127); Q4_0 truncates v + 8.5 (the operands come from min/max,
 * so no compiler fuses the product and the sum). */

/* |v| with NaN lanes 0 (the references' maximum skips NaN). */
FTI__AVX2 static __m256 fti__abs_nan0_avx2(__m256 v) {
    return _mm256_and_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v),
                         _mm256_cmp_ps(v, v, _CMP_ORD_Q));
}

FTI__AVX2 static float fti__hmax8_avx2(__m256 m) {
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* v with NaN lanes 0, clamped to ±lim; t = trunc, r = v - t (exact). */
FTI__AVX2 static __m256i fti__trunc_rem_avx2(__m256 v, float lim, __m256 *r) {
    __m256i t;
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-lim)), _mm256_set1_ps(lim));
    t = _mm256_cvttps_epi32(v);
    *r = _mm256_sub_ps(v, _mm256_cvtepi32_ps(t));
    return t;
}

FTI__AVX2 static __m256i fti__q8_levels_avx2(__m256 v) {
    __m256 r;
    __m256i t = fti__trunc_rem_avx2(v, 127.0f, &r);
    t = _mm256_sub_epi32(t,
                         _mm256_castps_si256(_mm256_cmp_ps(r, _mm256_set1_ps(0.5f), _CMP_GE_OQ)));
    return _mm256_add_epi32(
        t, _mm256_castps_si256(_mm256_cmp_ps(r, _mm256_set1_ps(-0.5f), _CMP_LE_OQ)));
}

FTI__AVX2 static __m256i fti__q4_levels_avx2(__m256 v) {
    __m256i t;
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-9.0f)), _mm256_set1_ps(9.0f));
    t = _mm256_cvttps_epi32(_mm256_add_ps(v, _mm256_set1_ps(8.5f)));
    return _mm256_min_epi32(_mm256_max_epi32(t, _mm256_setzero_si256()), _mm256_set1_epi32(15));
}

FTI__AVX2 static void fti__quantize_q8_0_avx2(fti_block_q8_0 *dst, const float *src, size_t nb) {
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    size_t b;
    for (b = 0; b < nb; b++, src += FTI_QK) {
        __m256 v0 = _mm256_loadu_ps(src), v1 = _mm256_loadu_ps(src + 8);
        __m256 v2 = _mm256_loadu_ps(src + 16), v3 = _mm256_loadu_ps(src + 24), vid;
        __m256i p;
        float amax = fti__hmax8_avx2(
            _mm256_max_ps(_mm256_max_ps(fti__abs_nan0_avx2(v0), fti__abs_nan0_avx2(v1)),
                          _mm256_max_ps(fti__abs_nan0_avx2(v2), fti__abs_nan0_avx2(v3))));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = fti_f32_to_f16(d);
        vid = _mm256_set1_ps(id);
        p = _mm256_packs_epi16(_mm256_packs_epi32(fti__q8_levels_avx2(_mm256_mul_ps(v0, vid)),
                                                  fti__q8_levels_avx2(_mm256_mul_ps(v1, vid))),
                               _mm256_packs_epi32(fti__q8_levels_avx2(_mm256_mul_ps(v2, vid)),
                                                  fti__q8_levels_avx2(_mm256_mul_ps(v3, vid))));
        _mm256_storeu_si256((__m256i *)(void *)dst[b].qs, _mm256_permutevar8x32_epi32(p, perm));
    }
}

FTI__AVX2 static void fti__quantize_q4_0_avx2(fti_block_q4_0 *dst, const float *src, size_t nb) {
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    size_t b;
    for (b = 0; b < nb; b++, src += FTI_QK) {
        __m256 v0 = _mm256_loadu_ps(src), v1 = _mm256_loadu_ps(src + 8);
        __m256 v2 = _mm256_loadu_ps(src + 16), v3 = _mm256_loadu_ps(src + 24), vid, va;
        __m256 a0 = fti__abs_nan0_avx2(v0), a1 = fti__abs_nan0_avx2(v1);
        __m256 a2 = fti__abs_nan0_avx2(v2), a3 = fti__abs_nan0_avx2(v3);
        __m256i w0, w1, p;
        float amax = fti__hmax8_avx2(_mm256_max_ps(_mm256_max_ps(a0, a1), _mm256_max_ps(a2, a3)));
        float mx = 0.0f, d, id;
        if (amax > 0.0f) { /* the first element of largest magnitude */
            unsigned m;
            va = _mm256_set1_ps(amax);
            m = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a0, va, _CMP_EQ_OQ)) |
                (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a1, va, _CMP_EQ_OQ)) << 8 |
                (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a2, va, _CMP_EQ_OQ)) << 16 |
                (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(a3, va, _CMP_EQ_OQ)) << 24;
            mx = src[__builtin_ctz(m)];
        }
        d = mx / -8.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = fti_f32_to_f16(d);
        vid = _mm256_set1_ps(id);
        /* byte j: element j (low nibble) and j + 16 (high) */
        w0 = _mm256_or_si256(fti__q4_levels_avx2(_mm256_mul_ps(v0, vid)),
                             _mm256_slli_epi32(fti__q4_levels_avx2(_mm256_mul_ps(v2, vid)), 4));
        w1 = _mm256_or_si256(fti__q4_levels_avx2(_mm256_mul_ps(v1, vid)),
                             _mm256_slli_epi32(fti__q4_levels_avx2(_mm256_mul_ps(v3, vid)), 4));
        p = _mm256_packus_epi16(_mm256_packs_epi32(w0, w1), _mm256_setzero_si256());
        _mm_storeu_si128((__m128i *)(void *)dst[b].qs,
                         _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(p, perm)));
    }
}

/* The scale through F16C (_cvtsh_ss), not fti_f16_to_f32: gcc emits that call without a
 * vzeroupper, and non-VEX SSE code run with dirty upper ymm halves made these loops 5× slower than
 * the scalar reference on Zen 3 (1.1 GB/s against 5.6). */
FTI__AVX2 static void fti__dequantize_q8_0_avx2(float *dst, const fti_block_q8_0 *src, size_t nb) {
    size_t b;
    int j;
    for (b = 0; b < nb; b++, dst += FTI_QK) {
        __m256 d = _mm256_set1_ps(_cvtsh_ss(src[b].d));
        __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)src[b].qs);
        __m128i h[2];
        h[0] = _mm256_castsi256_si128(q);
        h[1] = _mm256_extracti128_si256(q, 1);
        for (j = 0; j < 2; j++) {
            _mm256_storeu_ps(dst + 16 * j,
                             _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(h[j])), d));
            _mm256_storeu_ps(
                dst + 16 * j + 8,
                _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(h[j], 8))),
                              d));
        }
    }
}

FTI__AVX2 static void fti__dequantize_q4_0_avx2(float *dst, const fti_block_q4_0 *src, size_t nb) {
    size_t b;
    for (b = 0; b < nb; b++, dst += FTI_QK) {
        __m256 d = _mm256_set1_ps(_cvtsh_ss(src[b].d));
        __m128i q = _mm_loadu_si128((const __m128i *)(const void *)src[b].qs);
        __m128i lo = _mm_and_si128(q, _mm_set1_epi8(15));
        __m128i hi = _mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(15));
        __m256i e = _mm256_set1_epi32(8);
        _mm256_storeu_ps(dst, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(
                                                _mm256_cvtepu8_epi32(lo), e)), d));
        _mm256_storeu_ps(dst + 8,
                         _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(
                                           _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)), e)),
                                       d));
        _mm256_storeu_ps(dst + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(
                                                     _mm256_cvtepu8_epi32(hi), e)), d));
        _mm256_storeu_ps(dst + 24,
                         _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(
                                           _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)), e)),
                                       d));
    }
}

/* Lanes [0, left) of a masked load (left < 8). */
FTI__AVX2 static __m256i fti__tail8_avx2(size_t left) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* f32 GEMV as the AVX-512 one (fti__gemv_f32_avx512): each row one accumulator, 8 floats per
 * step, the masked tail last; rows four at a time from the four quarters of the range. */
FTI__AVX2 static void fti__gemv_f32_avx2(const void *W, size_t row_bytes, size_t rows,
                                         const float *x, size_t n, float *y, int acc) {
    size_t q = rows / 4, r, i, qb = q * row_bytes, n8 = n / 8 * 8;
    __m256i m = fti__tail8_avx2(n - n8);
    __m256 xt = _mm256_maskload_ps(x + n8, m);
    for (r = 0; r < q; r++) {
        const char *w = (const char *)W + r * row_bytes;
        const float *w0 = (const float *)w, *w1 = (const float *)(w + qb);
        const float *w2 = (const float *)(w + 2 * qb), *w3 = (const float *)(w + 3 * qb);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, xv;
        float s[4];
        int j;
        for (i = 0; i < n8; i += 8) {
            xv = _mm256_loadu_ps(x + i);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + i), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + i), xv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + i), xv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + i), xv, a3);
        }
        if (n8 < n) {
            a0 = _mm256_fmadd_ps(_mm256_maskload_ps(w0 + n8, m), xt, a0);
            a1 = _mm256_fmadd_ps(_mm256_maskload_ps(w1 + n8, m), xt, a1);
            a2 = _mm256_fmadd_ps(_mm256_maskload_ps(w2 + n8, m), xt, a2);
            a3 = _mm256_fmadd_ps(_mm256_maskload_ps(w3 + n8, m), xt, a3);
        }
        s[0] = fti__hsum_avx2(a0);
        s[1] = fti__hsum_avx2(a1);
        s[2] = fti__hsum_avx2(a2);
        s[3] = fti__hsum_avx2(a3);
        for (j = 0; j < 4; j++) {
            float *yr = y + r + (size_t)j * q;
            *yr = acc ? *yr + s[j] : s[j];
        }
    }
    for (r = 4 * q; r < rows; r++) {
        const float *w0 = (const float *)((const char *)W + r * row_bytes);
        __m256 a0 = _mm256_setzero_ps();
        float s;
        for (i = 0; i < n8; i += 8)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + i), _mm256_loadu_ps(x + i), a0);
        if (n8 < n) a0 = _mm256_fmadd_ps(_mm256_maskload_ps(w0 + n8, m), xt, a0);
        s = fti__hsum_avx2(a0);
        y[r] = acc ? y[r] + s : s;
    }
}

FTI__AVX2 static void fti__gemv_f16_avx2(const void *W, size_t row_bytes, size_t rows,
                                         const float *x, size_t n, float *y, int acc) {
    size_t r, i;
    for (r = 0; r < rows; r++) {
        const uint16_t *w = (const uint16_t *)((const char *)W + r * row_bytes);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        float s;
        for (i = 0; i + 16 <= n; i += 16) {
            a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))),
                                 _mm256_loadu_ps(x + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8))),
                                 _mm256_loadu_ps(x + i + 8), a1);
        }
        s = fti__hsum_avx2(_mm256_add_ps(a0, a1));
        for (; i < n; i++) s += fti_f16_to_f32(w[i]) * x[i];
        y[r] = acc ? y[r] + s : s;
    }
}

FTI__AVX2 static __m256 fti__bf16x8_avx2(const uint16_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

FTI__AVX2 static void fti__gemv_bf16_avx2(const void *W, size_t row_bytes, size_t rows,
                                          const float *x, size_t n, float *y, int acc) {
    size_t r, i;
    for (r = 0; r < rows; r++) {
        const uint16_t *w = (const uint16_t *)((const char *)W + r * row_bytes);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        float s;
        for (i = 0; i + 16 <= n; i += 16) {
            a0 = _mm256_fmadd_ps(fti__bf16x8_avx2(w + i), _mm256_loadu_ps(x + i), a0);
            a1 = _mm256_fmadd_ps(fti__bf16x8_avx2(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        }
        s = fti__hsum_avx2(_mm256_add_ps(a0, a1));
        for (; i < n; i++) s += fti_bf16_to_f32(w[i]) * x[i];
        y[r] = acc ? y[r] + s : s;
    }
}

FTI__AVX2 static void fti__rmsnorm_bwd_row_avx2(float *dx, float *dw, const float *dout,
                                                const float *x, const float *w, float rstd,
                                                size_t n) {
    __m256 vr = _mm256_set1_ps(rstd), acc = _mm256_setzero_ps(), vm;
    float dot, mean;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(dout + i);
        if (w) g = _mm256_mul_ps(g, _mm256_loadu_ps(w + i));
        acc = _mm256_fmadd_ps(g, _mm256_mul_ps(_mm256_loadu_ps(x + i), vr), acc);
    }
    dot = fti__hsum_avx2(acc);
    for (; i < n; i++) dot += (w ? w[i] * dout[i] : dout[i]) * (x[i] * rstd);
    mean = dot / (float)n;
    vm = _mm256_set1_ps(mean);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 d = _mm256_loadu_ps(dout + i), g = d;
        __m256 xh = _mm256_mul_ps(_mm256_loadu_ps(x + i), vr);
        if (w) g = _mm256_mul_ps(d, _mm256_loadu_ps(w + i));
        if (dw) _mm256_storeu_ps(dw + i, _mm256_fmadd_ps(d, xh, _mm256_loadu_ps(dw + i)));
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(vr, _mm256_fnmadd_ps(xh, vm, g)));
    }
    for (; i < n; i++) {
        float xh = x[i] * rstd, d = dout[i];
        if (dw) dw[i] += d * xh;
        dx[i] = rstd * ((w ? w[i] * d : d) - xh * mean);
    }
}

FTI__AVX2 static void fti__softmax_bwd_row_avx2(float *dx, const float *p, const float *dp,
                                                size_t n) {
    float s = fti__dot_avx2(p, dp, n);
    __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(p + i),
                                               _mm256_sub_ps(_mm256_loadu_ps(dp + i), vs)));
    for (; i < n; i++) dx[i] = p[i] * (dp[i] - s);
}

FTI__AVX2 static void fti__adamw_avx2(float *p, const float *g, float *m, float *v, size_t n,
                                      const float c[8]) {
    __m256 lr = _mm256_set1_ps(c[0]), b1 = _mm256_set1_ps(c[1]), b2 = _mm256_set1_ps(c[2]);
    __m256 eps = _mm256_set1_ps(c[3]), dec = _mm256_set1_ps(c[4]), gs = _mm256_set1_ps(c[5]);
    __m256 c1 = _mm256_set1_ps(c[6]), c2 = _mm256_set1_ps(c[7]);
    __m256 one_b1 = _mm256_set1_ps(1.0f - c[1]), one_b2 = _mm256_set1_ps(1.0f - c[2]);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gi = _mm256_mul_ps(_mm256_loadu_ps(g + i), gs);
        __m256 mi =
            _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(one_b1, gi));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + i)),
                                  _mm256_mul_ps(_mm256_mul_ps(one_b2, gi), gi));
        __m256 den = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vi), c2), eps);
        __m256 upd = _mm256_div_ps(_mm256_mul_ps(lr, _mm256_mul_ps(mi, c1)), den);
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        _mm256_storeu_ps(p + i, _mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(p + i), dec), upd));
    }
    fti__adamw_ref(p + i, g + i, m + i, v + i, n - i, c);
}

FTI__AVX2 static void fti__bf16_to_f32_avx2(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, fti__bf16x8_avx2(src + i));
    fti__bf16_to_f32_ref(dst + i, src + i, n - i);
}

/* --- quantized GEMV (decode) and the shared pieces of the AVX2 multi-row tiles ------------------
 * Two blocks b, b+1 per step and four weight rows at a time. The 8 block-rows' integer dots are
 * reduced together into [row 0..3 of b | row 0..3 of b+1] (exact int32 sums), so the offset
 * correction, the conversion and the scaling (wd·xd, one fp16 conversion for all 8) are one
 * instruction each for 8 block-rows, without a per-row permute or horizontal sum. A row's result
 * is (Σ over even blocks of s·int, in order) + (Σ over odd blocks), float lanes that no other row
 * touches: the same bits wherever the row falls, alone or in a group of 4 (a group of fewer rows
 * repeats a row's pointer), in the GEMV and in the tiles of 02_kernels_quant.c (the AVX-512
 * table without VNNI runs both; its decode and batched paths agree bit for bit). An odd last
 * block is a pair with a zero second half (zero nibbles or zero dots, zero scale).
 * On Zen 3 these loops are bound by instruction throughput (~5 per cycle) and by how far the
 * out-of-order window reaches, not by one pipe: hence x's vectors prepared once per call, the
 * Q8_0 sign flip by vpxor, one lane crossing per 8 sums, and the software pipeline (see
 * fti__gemv_q8_0_rows4_avx2). */

/* [Σ lanes 0-3 of p0, p1, p2, p3 | Σ lanes 4-7 of p0, p1, p2, p3] (a transposing reduction). */
FTI__AVX2 static inline __attribute__((always_inline)) __m256i
fti__hsum4x2_epi32_avx2(__m256i p0, __m256i p1, __m256i p2, __m256i p3) {
    __m256i s01 = _mm256_add_epi32(_mm256_unpacklo_epi32(p0, p1), _mm256_unpackhi_epi32(p0, p1));
    __m256i s23 = _mm256_add_epi32(_mm256_unpacklo_epi32(p2, p3), _mm256_unpackhi_epi32(p2, p3));
    return _mm256_add_epi32(_mm256_unpacklo_epi64(s01, s23), _mm256_unpackhi_epi64(s01, s23));
}

/* The fp16 scales of block b of rows w[0..3] as one 64-bit word (gathered in general registers,
 * which the vector kernels leave idle). */
#define FTI__D4_AVX2(w, b)                                                                         \
    ((uint64_t)(w)[0][b].d | (uint64_t)(w)[1][b].d << 16 | (uint64_t)(w)[2][b].d << 32 |          \
     (uint64_t)(w)[3][b].d << 48)

/* [wd(r, b) | wd(r, b+1)] for r = 0..3 as floats from the two words of FTI__D4_AVX2. The empty
 * asm keeps the words in general registers: without it gcc's SLP vectorizer builds them with a
 * dozen vector shuffles, on the pipes the dots need. */
FTI__AVX2 static inline __attribute__((always_inline)) __m256 fti__d8_avx2(uint64_t d0,
                                                                            uint64_t d1) {
    __asm__("" : "+r"(d0), "+r"(d1));
    return _mm256_cvtph_ps(_mm_set_epi64x((long long)d1, (long long)d0));
}

/* Two floats (or ints) as [a ×4 | b ×4]. */
FTI__AVX2 static inline __attribute__((always_inline)) __m256 fti__pair_ps_avx2(float a, float b) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_set1_ps(a)), _mm_set1_ps(b), 1);
}
FTI__AVX2 static inline __attribute__((always_inline)) __m256i fti__pair_epi32_avx2(int32_t a,
                                                                                     int32_t b) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi32(a)), _mm_set1_epi32(b), 1);
}

/* Q4_0 nibbles of blocks b, b+1 of a row: lo = elements 0..15 of b | of b+1 (q & 15), hi = 16..31
 * ((q >> 4) & 15). The two 16-byte qs sit 18 bytes apart: two 32-byte loads 2 bytes apart (b's
 * qs | b+1's d and 14 bytes; b's last 14 and b+1's d | b+1's qs, ending with the pair) and a blend,
 * no shuffle. NIB1: block b alone, zeros for b+1. */
#define FTI__Q4_NIB2_AVX2(wb, lo, hi)                                                              \
    do {                                                                                           \
        __m256i q_ = _mm256_blend_epi32(                                                           \
            _mm256_loadu_si256((const __m256i *)(wb)[0].qs),                                       \
            _mm256_loadu_si256((const __m256i *)((wb)[0].qs + 2)), 0xf0);                          \
        lo = _mm256_and_si256(q_, m4);                                                             \
        hi = _mm256_and_si256(_mm256_srli_epi16(q_, 4), m4);                                       \
    } while (0)
#define FTI__Q4_NIB1_AVX2(wb, lo, hi)                                                              \
    do {                                                                                           \
        __m256i q_ = _mm256_inserti128_si256(_mm256_setzero_si256(),                               \
                                             _mm_loadu_si128((const __m128i *)(wb)[0].qs), 0);     \
        lo = _mm256_and_si256(q_, m4);                                                             \
        hi = _mm256_and_si256(_mm256_srli_epi16(q_, 4), m4);                                       \
    } while (0)
/* A row's dots of the pair as 8 int16 partial sums per block: nibbles times x, |each| <=
 * 2·2·15·128 = 7680, so fti__hsum4x2_epi16_avx2 may add four of them in int16. */
#define FTI__Q4_DOT2_AVX2(lo, hi, xlo, xhi)                                                        \
    _mm256_add_epi16(_mm256_maddubs_epi16(lo, xlo), _mm256_maddubs_epi16(hi, xhi))

/* fti__hsum4x2_epi32_avx2 for int16 lanes (8 per block) whose sums of 4 fit in int16: the same
 * two transposing levels on word pairs, added in int16, leave each row's sum in two adjacent
 * words; one madd makes the int32 sums of 8. */
FTI__AVX2 static inline __attribute__((always_inline)) __m256i
fti__hsum4x2_epi16_avx2(__m256i p0, __m256i p1, __m256i p2, __m256i p3) {
    __m256i s01 = _mm256_add_epi16(_mm256_unpacklo_epi32(p0, p1), _mm256_unpackhi_epi32(p0, p1));
    __m256i s23 = _mm256_add_epi16(_mm256_unpacklo_epi32(p2, p3), _mm256_unpackhi_epi32(p2, p3));
    return _mm256_madd_epi16(
        _mm256_add_epi16(_mm256_unpacklo_epi64(s01, s23), _mm256_unpackhi_epi64(s01, s23)),
        _mm256_set1_epi16(1));
}

/* Two blocks' 8 lanes each folded into [b's lanes 0-3 + 4-7 | b+1's 4-7 + 0-3]. */
FTI__AVX2 static inline __attribute__((always_inline)) __m256i fti__fold2_epi32_avx2(__m256i p,
                                                                                      __m256i q) {
    return _mm256_add_epi32(_mm256_blend_epi32(p, q, 0xf0), _mm256_permute2x128_si256(p, q, 0x21));
}

/* The reduction of 8 rows' (or 4 rows × 2 blocks') 8 int32 lanes to [Σ p0, ..., Σ p7], in two
 * halves so the GEMV loops can software-pipeline it: fti__sum2_epi32_avx2 adds lane pairs of p
 * and q, interleaved, within 128-bit lanes (the first transposing level); fti__hsum8_fin_avx2
 * makes the second level from the four results and crosses the 128-bit lanes once at the end
 * (vperm2i128 costs about two ops of Zen 3's vector pipes, so one per 8 sums). */
FTI__AVX2 static inline __attribute__((always_inline)) __m256i fti__sum2_epi32_avx2(__m256i p,
                                                                                    __m256i q) {
    return _mm256_add_epi32(_mm256_unpacklo_epi32(p, q), _mm256_unpackhi_epi32(p, q));
}
FTI__AVX2 static inline __attribute__((always_inline)) __m256i
fti__hsum8_fin_avx2(__m256i s01, __m256i s23, __m256i s45, __m256i s67) {
    __m256i t0 = _mm256_add_epi32(_mm256_unpacklo_epi64(s01, s23), _mm256_unpackhi_epi64(s01, s23));
    __m256i t1 = _mm256_add_epi32(_mm256_unpacklo_epi64(s45, s67), _mm256_unpackhi_epi64(s45, s67));
    return _mm256_add_epi32(_mm256_blend_epi32(t0, t1, 0xf0),
                            _mm256_permute2x128_si256(t0, t1, 0x21));
}

/* What the Q8_0 GEMV needs of x for the pair (b, b+1) (two = 0: b alone, zeros for b+1):
 * o[0], o[1] = |x| of b, of b+1; o[2], o[3] = their sign masks (0xff where x < 0); o[4] =
 * c = Σ|x| over x < 0 as int32 [c(b) ×4 | c(b+1) ×4]; o[5] = xd likewise (float bits). */
FTI__AVX2 static inline __attribute__((always_inline)) void
fti__q8_xpair_avx2(const int8_t *xq, const float *xd, size_t b, int two, __m256i *o) {
    const __m256i z = _mm256_setzero_si256();
    __m256i x0 = _mm256_loadu_si256((const __m256i *)(xq + b * FTI_QK));
    __m256i x1 = two ? _mm256_loadu_si256((const __m256i *)(xq + b * FTI_QK + FTI_QK)) : z;
    __m256i c0, c1;
    o[0] = _mm256_sign_epi8(x0, x0);
    o[1] = _mm256_sign_epi8(x1, x1);
    o[2] = _mm256_cmpgt_epi8(z, x0);
    o[3] = _mm256_cmpgt_epi8(z, x1);
    c0 = _mm256_sad_epu8(_mm256_and_si256(o[0], o[2]), z); /* 4 partial sums in 64-bit lanes */
    c1 = _mm256_sad_epu8(_mm256_and_si256(o[1], o[3]), z);
    c0 = _mm256_add_epi64(c0, _mm256_shuffle_epi32(c0, 0x4e));
    c1 = _mm256_add_epi64(c1, _mm256_shuffle_epi32(c1, 0x4e));
    o[4] = fti__pair_epi32_avx2(
        _mm256_cvtsi256_si32(c0) + _mm_cvtsi128_si32(_mm256_extracti128_si256(c0, 1)),
        _mm256_cvtsi256_si32(c1) + _mm_cvtsi128_si32(_mm256_extracti128_si256(c1, 1)));
    o[5] = _mm256_castps_si256(fti__pair_ps_avx2(xd[b], two ? xd[b + 1] : 0.0f));
}

/* Pairs of blocks whose fti__q8_xpair_avx2 vectors the Q8_0 GEMV prepares once per call on the
 * stack (12 KiB: n_in up to 4096); longer rows build them in the loop (same values). */
enum { FTI__Q8_XPAIRS = 64 };

/* Q8_0: a row's int32 dots of a block plus c, as 8 lanes: |x| times w with its bits flipped where
 * x < 0 (~w = -w - 1, so each such element gives x·w + x = x·w - |x|; c restores the block's
 * exact sum). The flip is a vpxor, which runs on any of Zen 3's four vector pipes, where vpsignb
 * takes one of the two the multiplies need; and it is exact for w = -128, which a vpsignb of w
 * by x's sign wraps (no quantizer writes -128). */
#define FTI__Q8_DOTX_AVX2(wq, xa, xm)                                                              \
    _mm256_madd_epi16(                                                                             \
        _mm256_maddubs_epi16(xa, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(wq)), xm)), \
        ones)

/* The first half of a step of fti__gemv_q8_0_rows4_avx2: the dots of the pair at b with x's
 * vectors xp, reduced one level into s01, s23 (block b), s45, s67 (block b+1). */
#define FTI__Q8_DOTS4_AVX2(b, xp, s01, s23, s45, s67)                                              \
    do {                                                                                           \
        s01 = fti__sum2_epi32_avx2(FTI__Q8_DOTX_AVX2(w0[b].qs, (xp)[0], (xp)[2]),                 \
                                   FTI__Q8_DOTX_AVX2(w1[b].qs, (xp)[0], (xp)[2]));                \
        s23 = fti__sum2_epi32_avx2(FTI__Q8_DOTX_AVX2(w2[b].qs, (xp)[0], (xp)[2]),                 \
                                   FTI__Q8_DOTX_AVX2(w3[b].qs, (xp)[0], (xp)[2]));                \
        s45 = fti__sum2_epi32_avx2(FTI__Q8_DOTX_AVX2(w0[(b) + 1].qs, (xp)[1], (xp)[3]),           \
                                   FTI__Q8_DOTX_AVX2(w1[(b) + 1].qs, (xp)[1], (xp)[3]));          \
        s67 = fti__sum2_epi32_avx2(FTI__Q8_DOTX_AVX2(w2[(b) + 1].qs, (xp)[1], (xp)[3]),           \
                                   FTI__Q8_DOTX_AVX2(w3[(b) + 1].qs, (xp)[1], (xp)[3]));          \
    } while (0)
/* The second half: the rest of the reduction, c, and the scaling (d1: the scales word of block
 * b+1, 0 for none) into acc. */
#define FTI__Q8_SCALE4_AVX2(b, d1, xp, s01, s23, s45, s67)                                         \
    do {                                                                                           \
        __m256 sc_ = _mm256_mul_ps(fti__d8_avx2(FTI__D4_AVX2(wr, b), d1),                         \
                                   _mm256_castsi256_ps((xp)[5]));                                  \
        __m256i s_ = _mm256_add_epi32(fti__hsum8_fin_avx2(s01, s23, s45, s67), (xp)[4]);          \
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s_), sc_, acc);                                   \
    } while (0)

/* Rows w[0..3] of Q8_0 times the quantized x: the four results. xv: x's vectors for every pair,
 * (nb + 1) / 2 of them, or NULL to build them in the loop. The loop is software-pipelined: the
 * loads and dots of a pair come before the reduction of the pair before it, so the out-of-order
 * window reaches the next loads early (about 1.2x on Zen 3 over the plain order, which waited on
 * each pair's chain of ~30 cycles). */
FTI__AVX2 static __m128 fti__gemv_q8_0_rows4_avx2(const fti_block_q8_0 *const *w,
                                                  const __m256i *xv, const int8_t *xq,
                                                  const float *xd, size_t nb) {
    const __m256i ones = _mm256_set1_epi16(1), z = _mm256_setzero_si256();
    const fti_block_q8_0 *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
    const fti_block_q8_0 *const wr[4] = {w0, w1, w2, w3};
    __m256 acc = _mm256_setzero_ps();
    __m256i s01, s23, s45, s67, n01, n23, n45, n67, xt[6];
    const __m256i *xp = xt;
    size_t b = 0;
    if (xv && nb >= 2) {
        FTI__Q8_DOTS4_AVX2(0, xv, s01, s23, s45, s67);
        for (b = 2; b + 2 <= nb; b += 2) {
            FTI__Q8_DOTS4_AVX2(b, xv + 3 * b, n01, n23, n45, n67);
            FTI__Q8_SCALE4_AVX2(b - 2, FTI__D4_AVX2(wr, b - 1), xv + 3 * (b - 2), s01, s23, s45,
                                s67);
            s01 = n01;
            s23 = n23;
            s45 = n45;
            s67 = n67;
        }
        FTI__Q8_SCALE4_AVX2(b - 2, FTI__D4_AVX2(wr, b - 1), xv + 3 * (b - 2), s01, s23, s45, s67);
    } else if (!xv) {
        for (; b + 2 <= nb; b += 2) {
            fti__q8_xpair_avx2(xq, xd, b, 1, xt);
            FTI__Q8_DOTS4_AVX2(b, xt, s01, s23, s45, s67);
            FTI__Q8_SCALE4_AVX2(b, FTI__D4_AVX2(wr, b + 1), xt, s01, s23, s45, s67);
        }
    }
    if (b < nb) { /* the last block alone: zero dots for b+1, no load past the row */
        if (xv) xp = xv + 3 * b;
        else fti__q8_xpair_avx2(xq, xd, b, 0, xt);
        s01 = fti__sum2_epi32_avx2(FTI__Q8_DOTX_AVX2(w0[b].qs, xp[0], xp[2]),
                                   FTI__Q8_DOTX_AVX2(w1[b].qs, xp[0], xp[2]));
        s23 = fti__sum2_epi32_avx2(FTI__Q8_DOTX_AVX2(w2[b].qs, xp[0], xp[2]),
                                   FTI__Q8_DOTX_AVX2(w3[b].qs, xp[0], xp[2]));
        FTI__Q8_SCALE4_AVX2(b, 0, xp, s01, s23, z, z);
    }
    return _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
}
#undef FTI__Q8_DOTS4_AVX2
#undef FTI__Q8_SCALE4_AVX2

/* What Q4_0 steps need of x for the pair (b, b+1) (two = 0: b alone): o[0] = elements 0..15 of
 * block b | of b+1, o[1] = 16..31, o[2] = 8·Σx as int32 [b ×4 | b+1 ×4], o[3] = xd likewise
 * (float bits); zeros for a missing b+1. */
FTI__AVX2 static inline __attribute__((always_inline)) void
fti__q4_xpair_avx2(const int8_t *xq, const float *xd, const int32_t *xs, size_t b, int two,
                   __m256i *o) {
    __m256i x0 = _mm256_loadu_si256((const __m256i *)(xq + b * FTI_QK));
    if (two) {
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(xq + b * FTI_QK + FTI_QK));
        o[0] = _mm256_permute2x128_si256(x0, x1, 0x20);
        o[1] = _mm256_permute2x128_si256(x0, x1, 0x31);
    } else {
        o[0] = _mm256_permute2x128_si256(x0, x0, 0x80);
        o[1] = _mm256_permute2x128_si256(x0, x0, 0x81);
    }
    o[2] = _mm256_slli_epi32(fti__pair_epi32_avx2(xs[b], two ? xs[b + 1] : 0), 3);
    o[3] = _mm256_castps_si256(fti__pair_ps_avx2(xd[b], two ? xd[b + 1] : 0.0f));
}

/* Pairs of blocks whose fti__q4_xpair_avx2 vectors the Q4_0 GEMV prepares once per call on the
 * stack (8 KiB: n_in up to 4096); longer rows build them in the loop (same values). */
enum { FTI__Q4_XPAIRS = 64 };

/* One step of fti__gemv_q4_0_rows4_avx2: the pair at b (NIB: FTI__Q4_NIB2_AVX2, or NIB1 for the
 * last block alone, d1 = its scales word, 0) with x's vectors xp. */
#define FTI__Q4_STEP4_AVX2(NIB, b, d1, xp)                                                         \
    do {                                                                                           \
        __m256 sc_ = _mm256_mul_ps(fti__d8_avx2(FTI__D4_AVX2(wr, b), d1),                         \
                                   _mm256_castsi256_ps((xp)[3]));                                  \
        NIB(w0 + (b), l0, h0);                                                                     \
        NIB(w1 + (b), l1, h1);                                                                     \
        NIB(w2 + (b), l2, h2);                                                                     \
        NIB(w3 + (b), l3, h3);                                                                     \
        acc = _mm256_fmadd_ps(                                                                     \
            _mm256_cvtepi32_ps(_mm256_sub_epi32(                                                   \
                fti__hsum4x2_epi16_avx2(FTI__Q4_DOT2_AVX2(l0, h0, (xp)[0], (xp)[1]),               \
                                        FTI__Q4_DOT2_AVX2(l1, h1, (xp)[0], (xp)[1]),               \
                                        FTI__Q4_DOT2_AVX2(l2, h2, (xp)[0], (xp)[1]),               \
                                        FTI__Q4_DOT2_AVX2(l3, h3, (xp)[0], (xp)[1])),              \
                (xp)[2])),                                                                         \
            sc_, acc);                                                                             \
    } while (0)

/* The two halves of FTI__Q4_STEP4_AVX2 for the software pipeline of the rows4 loop: DOTS
 * unpacks the pair at b and makes the first level of the reduction (s01, s23), SCALE the rest,
 * scaled into acc. */
#define FTI__Q4_DOTS4_AVX2(b, xp, s01, s23)                                                        \
    do {                                                                                           \
        __m256i p0_, p1_, p2_, p3_;                                                                \
        FTI__Q4_NIB2_AVX2(w0 + (b), l0, h0);                                                       \
        FTI__Q4_NIB2_AVX2(w1 + (b), l1, h1);                                                       \
        FTI__Q4_NIB2_AVX2(w2 + (b), l2, h2);                                                       \
        FTI__Q4_NIB2_AVX2(w3 + (b), l3, h3);                                                       \
        p0_ = FTI__Q4_DOT2_AVX2(l0, h0, (xp)[0], (xp)[1]);                                        \
        p1_ = FTI__Q4_DOT2_AVX2(l1, h1, (xp)[0], (xp)[1]);                                        \
        p2_ = FTI__Q4_DOT2_AVX2(l2, h2, (xp)[0], (xp)[1]);                                        \
        p3_ = FTI__Q4_DOT2_AVX2(l3, h3, (xp)[0], (xp)[1]);                                        \
        s01 = _mm256_add_epi16(_mm256_unpacklo_epi32(p0_, p1_), _mm256_unpackhi_epi32(p0_, p1_)); \
        s23 = _mm256_add_epi16(_mm256_unpacklo_epi32(p2_, p3_), _mm256_unpackhi_epi32(p2_, p3_)); \
    } while (0)
#define FTI__Q4_SCALE4_AVX2(b, xp, s01, s23)                                                       \
    do {                                                                                           \
        __m256 sc_ = _mm256_mul_ps(fti__d8_avx2(FTI__D4_AVX2(wr, b), FTI__D4_AVX2(wr, (b) + 1)),  \
                                   _mm256_castsi256_ps((xp)[3]));                                  \
        __m256i s_ = _mm256_madd_epi16(                                                            \
            _mm256_add_epi16(_mm256_unpacklo_epi64(s01, s23), _mm256_unpackhi_epi64(s01, s23)),   \
            _mm256_set1_epi16(1));                                                                 \
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(s_, (xp)[2])), sc_, acc);       \
    } while (0)

/* Rows w[0..3] of Q4_0 times the quantized x: nibbles (unsigned) times x, minus 8·Σx per block
 * (exact, in int32, before the conversion). xv: x's vectors for every pair (nb + 1) / 2 of them,
 * or NULL to build them in the loop. With xv the loop is software-pipelined like the Q8_0 one
 * (the loads and dots of a pair, then the reduction of the pair before). */
FTI__AVX2 static __m128 fti__gemv_q4_0_rows4_avx2(const fti_block_q4_0 *const *w,
                                                  const __m256i *xv, const int8_t *xq,
                                                  const float *xd, const int32_t *xs, size_t nb) {
    const __m256i m4 = _mm256_set1_epi8(15);
    const fti_block_q4_0 *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
    const fti_block_q4_0 *const wr[4] = {w0, w1, w2, w3};
    __m256 acc = _mm256_setzero_ps();
    __m256i l0, h0, l1, h1, l2, h2, l3, h3, s01, s23, n01, n23, xt[4];
    size_t b = 0;
    if (xv && nb >= 2) {
        FTI__Q4_DOTS4_AVX2(0, xv, s01, s23);
        for (b = 2; b + 2 <= nb; b += 2) {
            FTI__Q4_DOTS4_AVX2(b, xv + 2 * b, n01, n23);
            FTI__Q4_SCALE4_AVX2(b - 2, xv + 2 * (b - 2), s01, s23);
            s01 = n01;
            s23 = n23;
        }
        FTI__Q4_SCALE4_AVX2(b - 2, xv + 2 * (b - 2), s01, s23);
    } else if (!xv) {
        for (; b + 2 <= nb; b += 2) {
            fti__q4_xpair_avx2(xq, xd, xs, b, 1, xt);
            FTI__Q4_STEP4_AVX2(FTI__Q4_NIB2_AVX2, b, FTI__D4_AVX2(wr, b + 1), xt);
        }
    }
    if (b < nb) {
        if (!xv) fti__q4_xpair_avx2(xq, xd, xs, b, 0, xt);
        FTI__Q4_STEP4_AVX2(FTI__Q4_NIB1_AVX2, b, 0, xv ? xv + 2 * b : xt);
    }
    return _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
}
#undef FTI__Q4_DOTS4_AVX2
#undef FTI__Q4_SCALE4_AVX2
#undef FTI__Q4_STEP4_AVX2

/* Rows four at a time from the four quarters of the range (rows i, i+q, i+2q, i+3q: four
 * sequential streams sharing x); the 1-3 rows left over go together, the last repeated. */
#define FTI__GEMV_Q_AVX2(name, block, prep, call)                                                  \
    FTI__AVX2 static void name(const void *W, size_t row_bytes, size_t rows, const int8_t *xq,     \
                               const float *xd, const int32_t *xs, size_t nb, float *y) {         \
        size_t r, q4 = rows / 4, st = q4 * row_bytes, j;                                           \
        const block *w[4];                                                                         \
        float o[4];                                                                                \
        (void)xs;                                                                                  \
        prep;                                                                                      \
        for (r = 0; r < q4; r++) {                                                                 \
            __m128 v;                                                                              \
            for (j = 0; j < 4; j++)                                                                \
                w[j] = (const block *)(const void *)((const char *)W + r * row_bytes + j * st);    \
            v = call;                                                                              \
            y[r] = _mm_cvtss_f32(v);                                                               \
            _mm_storeu_ps(o, v);                                                                   \
            y[r + q4] = o[1];                                                                      \
            y[r + 2 * q4] = o[2];                                                                  \
            y[r + 3 * q4] = o[3];                                                                  \
        }                                                                                          \
        if (4 * q4 < rows) {                                                                       \
            for (j = 0; j < 4; j++) {                                                              \
                r = 4 * q4 + j < rows ? 4 * q4 + j : rows - 1;                                     \
                w[j] = (const block *)(const void *)((const char *)W + r * row_bytes);             \
            }                                                                                      \
            _mm_storeu_ps(o, call);                                                                \
            for (r = 4 * q4; r < rows; r++) y[r] = o[r - 4 * q4];                                  \
        }                                                                                          \
    }
/* Q8_0: x's vectors of every pair once per call when they fit on the stack */
#define FTI__Q8_PREP                                                                               \
    __m256i xbuf[FTI__Q8_XPAIRS * 6];                                                              \
    const __m256i *xv = NULL;                                                                      \
    if (nb <= 2 * FTI__Q8_XPAIRS) {                                                                \
        for (j = 0; j < nb; j += 2) fti__q8_xpair_avx2(xq, xd, j, j + 1 < nb, xbuf + 3 * j);     \
        xv = xbuf;                                                                                 \
    }
FTI__GEMV_Q_AVX2(fti__gemv_q8_0_avx2, fti_block_q8_0, FTI__Q8_PREP,
                 fti__gemv_q8_0_rows4_avx2(w, xv, xq, xd, nb))
#undef FTI__Q8_PREP
/* Q4_0: x's vectors of every pair once per call when they fit on the stack */
#define FTI__Q4_PREP                                                                               \
    __m256i xbuf[FTI__Q4_XPAIRS * 4];                                                              \
    const __m256i *xv = NULL;                                                                      \
    if (nb <= 2 * FTI__Q4_XPAIRS) {                                                                \
        for (j = 0; j < nb; j += 2) fti__q4_xpair_avx2(xq, xd, xs, j, j + 1 < nb, xbuf + 2 * j);  \
        xv = xbuf;                                                                                 \
    }
FTI__GEMV_Q_AVX2(fti__gemv_q4_0_avx2, fti_block_q4_0, FTI__Q4_PREP,
                 fti__gemv_q4_0_rows4_avx2(w, xv, xq, xd, xs, nb))
#undef FTI__Q4_PREP
#undef FTI__GEMV_Q_AVX2

FTI__AVX2 static void fti__quantize_x_avx2(const float *x, size_t nb, int8_t *xq, float *xd,
                                           int32_t *xs) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    size_t b;
    for (b = 0; b < nb; b++, x += FTI_QK, xq += FTI_QK) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16),
               v3 = _mm256_loadu_ps(x + 24), m, vid;
        __m128 h;
        __m256i q0, q1, q2, q3, s16, p;
        float amax, d, id;
        m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                          _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        amax = _mm_cvtss_f32(h);
        d = amax / 127.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        xd[b] = d;
        vid = _mm256_set1_ps(id);
        q0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vid));
        q1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vid));
        q2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vid));
        q3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vid));
        xs[b] = fti__hsum_epi32_avx2(
            _mm256_add_epi32(_mm256_add_epi32(q0, q1), _mm256_add_epi32(q2, q3)));
        s16 = _mm256_packs_epi32(q0, q1);
        p = _mm256_packs_epi16(s16, _mm256_packs_epi32(q2, q3));
        _mm256_storeu_si256((__m256i *)xq, _mm256_permutevar8x32_epi32(p, perm));
    }
}

#if !defined(FTI_NO_AVX512)
/* --- AVX-512 ---------------------------------------------------------------------------------- */

/* GEMM micro-kernel 12×32: 24 zmm accumulators, B row in two zmm, A broadcast per row. */
#define FTI__UK5_ROW(i)                                                                            \
    do {                                                                                           \
        t = _mm512_set1_ps(a[i]);                                                                  \
        c##i##_0 = _mm512_fmadd_ps(t, b0, c##i##_0);                                               \
        c##i##_1 = _mm512_fmadd_ps(t, b1, c##i##_1);                                               \
    } while (0)
#define FTI__UK5_STORE(i)                                                                          \
    do {                                                                                           \
        float *ci = c + (i)*ldc;                                                                   \
        if (acc) {                                                                                 \
            c##i##_0 = _mm512_add_ps(_mm512_loadu_ps(ci), c##i##_0);                               \
            c##i##_1 = _mm512_add_ps(_mm512_loadu_ps(ci + 16), c##i##_1);                          \
        }                                                                                          \
        _mm512_storeu_ps(ci, c##i##_0);                                                            \
        _mm512_storeu_ps(ci + 16, c##i##_1);                                                       \
    } while (0)

/* a_step: floats between the 12 A values of consecutive k (12 for a packed panel, lda for an
 * op(A) column strip read in place from a TRANS_A source). kc >= 1. */
FTI__AVX512 static inline __attribute__((always_inline)) void
fti__ukernel_avx512_body(size_t kc, const float *a, size_t a_step, const float *b, float *c,
                         size_t ldc, int acc) {
    __m512 c0_0 = _mm512_setzero_ps(), c0_1 = c0_0, c1_0 = c0_0, c1_1 = c0_0, c2_0 = c0_0,
           c2_1 = c0_0, c3_0 = c0_0, c3_1 = c0_0, c4_0 = c0_0, c4_1 = c0_0, c5_0 = c0_0,
           c5_1 = c0_0, c6_0 = c0_0, c6_1 = c0_0, c7_0 = c0_0, c7_1 = c0_0, c8_0 = c0_0,
           c8_1 = c0_0, c9_0 = c0_0, c9_1 = c0_0, c10_0 = c0_0, c10_1 = c0_0, c11_0 = c0_0,
           c11_1 = c0_0, b0, b1, t;
    size_t p;
    /* a advances only between steps: after the last one, a + a_step could lie past the end of
     * an in-place source (forming such a pointer is undefined even if never dereferenced) */
    for (p = 0;; a += a_step, b += 32) {
        b0 = _mm512_loadu_ps(b);
        b1 = _mm512_loadu_ps(b + 16);
        FTI__UK5_ROW(0);
        FTI__UK5_ROW(1);
        FTI__UK5_ROW(2);
        FTI__UK5_ROW(3);
        FTI__UK5_ROW(4);
        FTI__UK5_ROW(5);
        FTI__UK5_ROW(6);
        FTI__UK5_ROW(7);
        FTI__UK5_ROW(8);
        FTI__UK5_ROW(9);
        FTI__UK5_ROW(10);
        FTI__UK5_ROW(11);
        if (++p >= kc) break;
    }
    FTI__UK5_STORE(0);
    FTI__UK5_STORE(1);
    FTI__UK5_STORE(2);
    FTI__UK5_STORE(3);
    FTI__UK5_STORE(4);
    FTI__UK5_STORE(5);
    FTI__UK5_STORE(6);
    FTI__UK5_STORE(7);
    FTI__UK5_STORE(8);
    FTI__UK5_STORE(9);
    FTI__UK5_STORE(10);
    FTI__UK5_STORE(11);
}

FTI__AVX512 static void fti__ukernel_avx512(size_t kc, const float *a, const float *b, float *c,
                                            size_t ldc, int acc) {
    fti__ukernel_avx512_body(kc, a, 12, b, c, ldc, acc);
}

FTI__AVX512 static void fti__ukernel_sa_avx512(size_t kc, const float *a, size_t lda,
                                               const float *b, float *c, size_t ldc, int acc) {
    fti__ukernel_avx512_body(kc, a, lda, b, c, ldc, acc);
}

FTI__AVX512 static __mmask16 fti__tail16(size_t left) {
    return (__mmask16)(left >= 16 ? 0xffffu : (1u << left) - 1u);
}

/* Horizontal reductions in a fixed order (GCC 12's _mm512_reduce_* trip g++ warnings). */
FTI__AVX512 static float fti__hsum_avx512(__m512 v) {
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4e));
    return fti__hsum_avx2(_mm512_castps512_ps256(v));
}

FTI__AVX512 static float fti__hmax_avx512(__m512 v) {
    __m128 h;
    v = _mm512_max_ps(v, _mm512_shuffle_f32x4(v, v, 0x4e));
    v = _mm512_max_ps(v, _mm512_shuffle_f32x4(v, v, 0xb1));
    h = _mm512_castps512_ps128(v);
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

FTI__AVX512 static int32_t fti__hsum_epi32_avx512(__m512i v) {
    v = _mm512_add_epi32(v, _mm512_shuffle_i32x4(v, v, 0x4e));
    return fti__hsum_epi32_avx2(_mm512_castsi512_si256(v));
}

FTI__AVX512 static float fti__dot_avx512(const float *x, const float *y, size_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), a3);
    }
    for (; i < n; i += 16) {
        __mmask16 m = fti__tail16(n - i);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), a0);
    }
    return fti__hsum_avx512(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

FTI__AVX512 static void fti__axpy_avx512(float *y, float a, const float *x, size_t n) {
    __m512 va = _mm512_set1_ps(a);
    size_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 m = fti__tail16(n - i);
        _mm512_mask_storeu_ps(
            y + i, m,
            _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

FTI__AVX512 static void fti__scale_avx512(float *x, float a, size_t n) {
    __m512 va = _mm512_set1_ps(a);
    size_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 m = fti__tail16(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, x + i)));
    }
}

FTI__AVX512 static float fti__max_avx512(const float *x, size_t n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    size_t i;
    for (i = 0; i < n; i += 16)
        mx = _mm512_max_ps(
            mx, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), fti__tail16(n - i), x + i));
    return fti__hmax_avx512(mx);
}

/* e^x as fti__exp_avx2, with scalef doing the 2^n (and the underflow to subnormals). */
FTI__AVX512 static __m512 fti__exp_avx512(__m512 x) {
    __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-104.0f), _CMP_LT_OQ);
    __mmask16 over = _mm512_cmp_ps_mask(x, _mm512_set1_ps(88.72283f), _CMP_GT_OQ);
    /* round to nearest with the 1.5·2^23 trick (roundscale trips g++'s -Wmaybe-uninitialized) */
    __m512 big = _mm512_set1_ps(12582912.0f);
    __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504f), big), big);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x), p;
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_maskz_scalef_ps((__mmask16)~under, p, n); /* 0 where under */
    return _mm512_mask_mov_ps(p, over, _mm512_set1_ps(INFINITY));
}

FTI__AVX512 static __m512 fti__sigmoid_avx512(__m512 x) {
    __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(
        one, _mm512_add_ps(one, fti__exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

FTI__AVX512 static float fti__exp_sum_avx512(float *y, const float *x, size_t n, float sub) {
    __m512 s = _mm512_setzero_ps(), vs = _mm512_set1_ps(sub);
    size_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 m = fti__tail16(n - i);
        __m512 e = fti__exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vs));
        _mm512_mask_storeu_ps(y + i, m, e);
        s = _mm512_mask_add_ps(s, m, s, e);
    }
    return fti__hsum_avx512(s);
}

FTI__AVX512 static void fti__mul_scaled_avx512(float *out, const float *x, const float *w, float s,
                                               size_t n) {
    __m512 vs = _mm512_set1_ps(s);
    size_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 m = fti__tail16(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs);
        if (w) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i));
        _mm512_mask_storeu_ps(out + i, m, v);
    }
}

FTI__AVX512 static void fti__silu_fwd_avx512(float *y, const float *x, size_t n) {
    size_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 m = fti__tail16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(v, fti__sigmoid_avx512(v)));
    }
}

FTI__AVX512 static void fti__silu_bwd_avx512(float *dx, const float *x, const float *dy, size_t n) {
    __m512 one = _mm512_set1_ps(1.0f);
    size_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 m = fti__tail16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i), s = fti__sigmoid_avx512(v);
        __m512 t = _mm512_fmadd_ps(v, _mm512_sub_ps(one, s), one);
        _mm512_mask_storeu_ps(dx + i, m,
                              _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), s), t));
    }
}

FTI__AVX512 static void fti__swiglu_fwd_avx512(float *h, const float *g, const float *u, size_t n) {
    size_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 m = fti__tail16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, g + i);
        _mm512_mask_storeu_ps(h + i, m,
                              _mm512_mul_ps(_mm512_mul_ps(v, fti__sigmoid_avx512(v)),
                                            _mm512_maskz_loadu_ps(m, u + i)));
    }
}

FTI__AVX512 static void fti__swiglu_bwd_avx512(float *dg, float *du, const float *g, const float *u,
                                               const float *dh, size_t n) {
    __m512 one = _mm512_set1_ps(1.0f);
    size_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 m = fti__tail16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, g + i), s = fti__sigmoid_avx512(v);
        __m512 d = _mm512_maskz_loadu_ps(m, dh + i), uu = _mm512_maskz_loadu_ps(m, u + i);
        __m512 t = _mm512_fmadd_ps(v, _mm512_sub_ps(one, s), one);
        _mm512_mask_storeu_ps(du + i, m, _mm512_mul_ps(_mm512_mul_ps(d, v), s));
        _mm512_mask_storeu_ps(dg + i, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(d, uu), s), t));
    }
}

/* --- AVX-512 weight quantizers (as the AVX2 ones: byte for byte the references') ----------- */

FTI__AVX512 static __m512 fti__abs_nan0_avx512(__m512 v) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), _mm512_abs_ps(v));
}

/* v with NaN lanes 0, clamped to ±lim; t = trunc, r = v - t (exact). */
FTI__AVX512 static __m512i fti__trunc_rem_avx512(__m512 v, float lim, __m512 *r) {
    __m512i t;
    v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-lim)), _mm512_set1_ps(lim));
    t = _mm512_cvttps_epi32(v);
    *r = _mm512_sub_ps(v, _mm512_cvtepi32_ps(t));
    return t;
}

FTI__AVX512 static __m512i fti__q8_levels_avx512(__m512 v) {
    const __m512i one = _mm512_set1_epi32(1);
    __m512 r;
    __m512i t = fti__trunc_rem_avx512(v, 127.0f, &r);
    t = _mm512_mask_add_epi32(t, _mm512_cmp_ps_mask(r, _mm512_set1_ps(0.5f), _CMP_GE_OQ), t, one);
    return _mm512_mask_sub_epi32(t, _mm512_cmp_ps_mask(r, _mm512_set1_ps(-0.5f), _CMP_LE_OQ), t,
                                 one);
}

FTI__AVX512 static __m512i fti__q4_levels_avx512(__m512 v) {
    __m512i t;
    v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-9.0f)), _mm512_set1_ps(9.0f));
    t = _mm512_cvttps_epi32(_mm512_add_ps(v, _mm512_set1_ps(8.5f)));
    return _mm512_min_epi32(_mm512_max_epi32(t, _mm512_setzero_si512()), _mm512_set1_epi32(15));
}

FTI__AVX512 static void fti__quantize_q8_0_avx512(fti_block_q8_0 *dst, const float *src,
                                                  size_t nb) {
    size_t b;
    for (b = 0; b < nb; b++, src += FTI_QK) {
        __m512 v0 = _mm512_loadu_ps(src), v1 = _mm512_loadu_ps(src + 16), vid;
        float amax =
            fti__hmax_avx512(_mm512_max_ps(fti__abs_nan0_avx512(v0), fti__abs_nan0_avx512(v1)));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = fti_f32_to_f16(d);
        vid = _mm512_set1_ps(id);
        _mm_storeu_si128((__m128i *)(void *)dst[b].qs,
                         _mm512_cvtepi32_epi8(fti__q8_levels_avx512(_mm512_mul_ps(v0, vid))));
        _mm_storeu_si128((__m128i *)(void *)(dst[b].qs + 16),
                         _mm512_cvtepi32_epi8(fti__q8_levels_avx512(_mm512_mul_ps(v1, vid))));
    }
}

FTI__AVX512 static void fti__quantize_q4_0_avx512(fti_block_q4_0 *dst, const float *src,
                                                  size_t nb) {
    size_t b;
    for (b = 0; b < nb; b++, src += FTI_QK) {
        __m512 v0 = _mm512_loadu_ps(src), v1 = _mm512_loadu_ps(src + 16), vid, va;
        __m512 a0 = fti__abs_nan0_avx512(v0), a1 = fti__abs_nan0_avx512(v1);
        float amax = fti__hmax_avx512(_mm512_max_ps(a0, a1)), mx = 0.0f, d, id;
        __m512i q;
        if (amax > 0.0f) { /* the first element of largest magnitude */
            uint32_t m;
            va = _mm512_set1_ps(amax);
            m = (uint32_t)_mm512_cmp_ps_mask(a0, va, _CMP_EQ_OQ) |
                (uint32_t)_mm512_cmp_ps_mask(a1, va, _CMP_EQ_OQ) << 16;
            /* from the registers (a load of src[j] right after the stores of the previous
             * block ran at half the speed, now and then) */
            mx = _mm512_cvtss_f32(_mm512_permutex2var_ps(
                v0, _mm512_set1_epi32((int)__builtin_ctz(m)), v1));
        }
        d = mx / -8.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = fti_f32_to_f16(d);
        vid = _mm512_set1_ps(id);
        q = _mm512_or_si512(fti__q4_levels_avx512(_mm512_mul_ps(v0, vid)),
                            _mm512_slli_epi32(fti__q4_levels_avx512(_mm512_mul_ps(v1, vid)), 4));
        _mm_storeu_si128((__m128i *)(void *)dst[b].qs, _mm512_cvtepi32_epi8(q));
    }
}

FTI__AVX512 static void fti__dequantize_q8_0_avx512(float *dst, const fti_block_q8_0 *src,
                                                    size_t nb) {
    size_t b;
    for (b = 0; b < nb; b++, dst += FTI_QK) {
        __m512 d = _mm512_set1_ps(fti_f16_to_f32(src[b].d));
        __m128i q0 = _mm_loadu_si128((const __m128i *)(const void *)src[b].qs);
        __m128i q1 = _mm_loadu_si128((const __m128i *)(const void *)(src[b].qs + 16));
        _mm512_storeu_ps(dst, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0)), d));
        _mm512_storeu_ps(dst + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1)), d));
    }
}

FTI__AVX512 static void fti__dequantize_q4_0_avx512(float *dst, const fti_block_q4_0 *src,
                                                    size_t nb) {
    const __m512i m4 = _mm512_set1_epi32(15), e = _mm512_set1_epi32(8);
    size_t b;
    for (b = 0; b < nb; b++, dst += FTI_QK) {
        __m512 d = _mm512_set1_ps(fti_f16_to_f32(src[b].d));
        __m512i q =
            _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)src[b].qs));
        __m512i lo = _mm512_sub_epi32(_mm512_and_si512(q, m4), e);
        __m512i hi = _mm512_sub_epi32(_mm512_srli_epi32(q, 4), e);
        _mm512_storeu_ps(dst, _mm512_mul_ps(_mm512_cvtepi32_ps(lo), d));
        _mm512_storeu_ps(dst + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(hi), d));
    }
}

/* f32 GEMV. Each row is one dot in a fixed order (one accumulator, 16 floats per step, the
 * masked tail last, then fti__hsum_avx512), whichever way the rows are grouped, so a row's value
 * never depends on the thread split. The rows go four at a time from the four quarters of the
 * call's range (r, r+q, r+2q, r+3q): four sequential streams keep more DRAM reads in flight on
 * one core than one stream of short rows does (K = 288: +20% here, at ~ the STREAM read rate). */
FTI__AVX512 static float fti__gemv_row_avx512(const float *w, const float *x, size_t n) {
    __m512 a = _mm512_setzero_ps();
    size_t i;
    for (i = 0; i + 16 <= n; i += 16)
        a = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a);
    if (i < n) {
        __mmask16 m = fti__tail16(n - i);
        a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, x + i), a);
    }
    return fti__hsum_avx512(a);
}

FTI__AVX512 static void fti__gemv_f32_avx512(const void *W, size_t row_bytes, size_t rows,
                                             const float *x, size_t n, float *y, int acc) {
    size_t q = rows / 4, r, i, qb = q * row_bytes;
    for (r = 0; r < q; r++) {
        const char *w = (const char *)W + r * row_bytes;
        const float *w0 = (const float *)w, *w1 = (const float *)(w + qb);
        const float *w2 = (const float *)(w + 2 * qb), *w3 = (const float *)(w + 3 * qb);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, xv;
        float s[4];
        int j;
        for (i = 0; i + 16 <= n; i += 16) {
            xv = _mm512_loadu_ps(x + i);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + i), xv, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + i), xv, a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + i), xv, a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + i), xv, a3);
        }
        if (i < n) {
            __mmask16 m = fti__tail16(n - i);
            xv = _mm512_maskz_loadu_ps(m, x + i);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w0 + i), xv, a0);
            a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w1 + i), xv, a1);
            a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w2 + i), xv, a2);
            a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w3 + i), xv, a3);
        }
        s[0] = fti__hsum_avx512(a0);
        s[1] = fti__hsum_avx512(a1);
        s[2] = fti__hsum_avx512(a2);
        s[3] = fti__hsum_avx512(a3);
        for (j = 0; j < 4; j++) {
            float *yr = y + r + (size_t)j * q;
            *yr = acc ? *yr + s[j] : s[j];
        }
    }
    for (r = 4 * q; r < rows; r++) {
        float s = fti__gemv_row_avx512((const float *)((const char *)W + r * row_bytes), x, n);
        y[r] = acc ? y[r] + s : s;
    }
}

FTI__AVX512 static void fti__gemv_f16_avx512(const void *W, size_t row_bytes, size_t rows,
                                             const float *x, size_t n, float *y, int acc) {
    size_t r, i;
    for (r = 0; r < rows; r++) {
        const uint16_t *w = (const uint16_t *)((const char *)W + r * row_bytes);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        float s;
        for (i = 0; i + 32 <= n; i += 32) {
            a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + i))),
                                 _mm512_loadu_ps(x + i), a0);
            a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + i + 16))),
                                 _mm512_loadu_ps(x + i + 16), a1);
        }
        for (; i < n; i += 16) {
            __mmask16 m = fti__tail16(n - i);
            a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + i)),
                                 _mm512_maskz_loadu_ps(m, x + i), a0);
        }
        s = fti__hsum_avx512(_mm512_add_ps(a0, a1));
        y[r] = acc ? y[r] + s : s;
    }
}

FTI__AVX512 static __m512 fti__bf16x16_avx512(__m256i v) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
}

FTI__AVX512 static void fti__gemv_bf16_avx512(const void *W, size_t row_bytes, size_t rows,
                                              const float *x, size_t n, float *y, int acc) {
    size_t r, i;
    for (r = 0; r < rows; r++) {
        const uint16_t *w = (const uint16_t *)((const char *)W + r * row_bytes);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        float s;
        for (i = 0; i + 32 <= n; i += 32) {
            a0 = _mm512_fmadd_ps(fti__bf16x16_avx512(_mm256_loadu_si256((const __m256i *)(w + i))),
                                 _mm512_loadu_ps(x + i), a0);
            a1 = _mm512_fmadd_ps(
                fti__bf16x16_avx512(_mm256_loadu_si256((const __m256i *)(w + i + 16))),
                _mm512_loadu_ps(x + i + 16), a1);
        }
        for (; i < n; i += 16) {
            __mmask16 m = fti__tail16(n - i);
            a0 = _mm512_fmadd_ps(fti__bf16x16_avx512(_mm256_maskz_loadu_epi16(m, w + i)),
                                 _mm512_maskz_loadu_ps(m, x + i), a0);
        }
        s = fti__hsum_avx512(_mm512_add_ps(a0, a1));
        y[r] = acc ? y[r] + s : s;
    }
}

FTI__AVX512 static void fti__quantize_x_avx512(const float *x, size_t nb, int8_t *xq, float *xd,
                                               int32_t *xs) {
    size_t b;
    for (b = 0; b < nb; b++, x += FTI_QK, xq += FTI_QK) {
        __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16), vid;
        __m512i q0, q1;
        float amax = fti__hmax_avx512(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        xd[b] = d;
        vid = _mm512_set1_ps(id);
        q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid));
        q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
        xs[b] = fti__hsum_epi32_avx512(_mm512_add_epi32(q0, q1));
        _mm_storeu_si128((__m128i *)xq, _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(xq + 16), _mm512_cvtepi32_epi8(q1));
    }
}

/* --- AVX-512 row ops for the backward passes and the optimizer -------------------------------- */

FTI__AVX512 static void fti__rmsnorm_bwd_row_avx512(float *dx, float *dw, const float *dout,
                                                    const float *x, const float *w, float rstd,
                                                    size_t n) {
    __m512 vr = _mm512_set1_ps(rstd), acc = _mm512_setzero_ps(), vm;
    size_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 m = fti__tail16(n - i);
        __m512 g = _mm512_maskz_loadu_ps(m, dout + i);
        if (w) g = _mm512_mul_ps(g, _mm512_maskz_loadu_ps(m, w + i));
        acc = _mm512_fmadd_ps(g, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vr), acc);
    }
    vm = _mm512_set1_ps(fti__hsum_avx512(acc) / (float)n);
    for (i = 0; i < n; i += 16) {
        __mmask16 m = fti__tail16(n - i);
        __m512 d = _mm512_maskz_loadu_ps(m, dout + i), g = d;
        __m512 xh = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vr);
        if (w) g = _mm512_mul_ps(d, _mm512_maskz_loadu_ps(m, w + i));
        if (dw)
            _mm512_mask_storeu_ps(dw + i, m,
                                  _mm512_fmadd_ps(d, xh, _mm512_maskz_loadu_ps(m, dw + i)));
        _mm512_mask_storeu_ps(dx + i, m, _mm512_mul_ps(vr, _mm512_fnmadd_ps(xh, vm, g)));
    }
}

FTI__AVX512 static void fti__softmax_bwd_row_avx512(float *dx, const float *p, const float *dp,
                                                    size_t n) {
    __m512 vs = _mm512_set1_ps(fti__dot_avx512(p, dp, n));
    size_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 m = fti__tail16(n - i);
        _mm512_mask_storeu_ps(dx + i, m,
                              _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + i),
                                            _mm512_sub_ps(_mm512_maskz_loadu_ps(m, dp + i), vs)));
    }
}

FTI__AVX512 static void fti__adamw_avx512(float *p, const float *g, float *m, float *v, size_t n,
                                          const float c[8]) {
    __m512 lr = _mm512_set1_ps(c[0]), b1 = _mm512_set1_ps(c[1]), b2 = _mm512_set1_ps(c[2]);
    __m512 eps = _mm512_set1_ps(c[3]), dec = _mm512_set1_ps(c[4]), gs = _mm512_set1_ps(c[5]);
    __m512 c1 = _mm512_set1_ps(c[6]), c2 = _mm512_set1_ps(c[7]);
    __m512 one_b1 = _mm512_set1_ps(1.0f - c[1]), one_b2 = _mm512_set1_ps(1.0f - c[2]);
    size_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 k = fti__tail16(n - i);
        __m512 gi = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, g + i), gs);
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_maskz_loadu_ps(k, m + i)),
                                  _mm512_mul_ps(one_b1, gi));
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_maskz_loadu_ps(k, v + i)),
                                  _mm512_mul_ps(_mm512_mul_ps(one_b2, gi), gi));
        __m512 den = _mm512_add_ps(_mm512_mul_ps(_mm512_sqrt_ps(vi), c2), eps);
        __m512 upd = _mm512_div_ps(_mm512_mul_ps(lr, _mm512_mul_ps(mi, c1)), den);
        _mm512_mask_storeu_ps(m + i, k, mi);
        _mm512_mask_storeu_ps(v + i, k, vi);
        _mm512_mask_storeu_ps(
            p + i, k, _mm512_sub_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + i), dec), upd));
    }
}

FTI__AVX512 static void fti__bf16_to_f32_avx512(float *dst, const uint16_t *src, size_t n) {
    size_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 m = fti__tail16(n - i);
        _mm512_mask_storeu_ps(dst + i, m,
                              fti__bf16x16_avx512(_mm256_maskz_loadu_epi16(m, src + i)));
    }
}

/* Round to nearest even, NaN kept quiet: as fti_f32_to_bf16, 16 at a time. */
FTI__AVX512 static void fti__f32_to_bf16_avx512(uint16_t *dst, const float *src, size_t n) {
    size_t i;
    for (i = 0; i < n; i += 16) {
        __mmask16 m = fti__tail16(n - i);
        __m512i x = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, src + i));
        __m512i odd = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
        __m512i r = _mm512_srli_epi32(
            _mm512_add_epi32(x, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff))), 16);
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(x, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
        r = _mm512_mask_mov_epi32(
            r, nan, _mm512_or_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(0x40)));
        _mm256_mask_storeu_epi16(dst + i, m, _mm512_cvtepi32_epi16(r));
    }
}

/* Scales wd·xd of blocks b..b+3 as four floats (one fp16 conversion for all four). */
#define FTI__SCALES4(w, b, xd)                                                                     \
    _mm_mul_ps(                                                                                    \
        _mm_cvtph_ps(_mm_setr_epi16((short)(w)[b].d, (short)(w)[(b) + 1].d, (short)(w)[(b) + 2].d, \
                                    (short)(w)[(b) + 3].d, 0, 0, 0, 0)),                           \
        _mm_loadu_ps((xd) + (b)))

/* Lane i of the result = Σ of the 16 lanes of v[i] (a transposing reduction: 45 ops for all 16
 * sums instead of 16 separate horizontal sums). Each sum is added in the same fixed order
 * whatever the other vectors hold (a row alone passes zeros and gets the same bits). Used by the
 * quantized GEMVs below and the multi-row tiles of 02_kernels_quant.c. */
FTI__AVX512 static __m512 fti__hsum16_avx512(const __m512 *v) {
    __m512 t[8], u[4], q0, q1;
/* per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] */
#define FTI__H16_T(i)                                                                              \
    t[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * (i)], v[2 * (i) + 1]),                           \
                         _mm512_unpackhi_ps(v[2 * (i)], v[2 * (i) + 1]))
/* per 128-bit lane: [a, b, c, d] */
#define FTI__H16_U(i)                                                                              \
    u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[2 * (i)]),        \
                                                             _mm512_castps_pd(t[2 * (i) + 1]))),   \
                         _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[2 * (i)]),        \
                                                             _mm512_castps_pd(t[2 * (i) + 1]))))
    FTI__H16_T(0); FTI__H16_T(1); FTI__H16_T(2); FTI__H16_T(3);
    FTI__H16_T(4); FTI__H16_T(5); FTI__H16_T(6); FTI__H16_T(7);
    FTI__H16_U(0); FTI__H16_U(1); FTI__H16_U(2); FTI__H16_U(3);
#undef FTI__H16_T
#undef FTI__H16_U
    q0 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], 0x44),
                       _mm512_shuffle_f32x4(u[0], u[1], 0xee));
    q1 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], 0x44),
                       _mm512_shuffle_f32x4(u[2], u[3], 0xee));
    return _mm512_add_ps(_mm512_shuffle_f32x4(q0, q1, 0x88), _mm512_shuffle_f32x4(q0, q1, 0xdd));
}

/* Rows r .. r+n-1 (n <= 4) of each of the four streams j (y + j·q4) from acc[4j + i] (row r+i
 * of stream j): one fti__hsum16_avx512, four stores (masked when n < 4). */
FTI__AVX512 static void fti__qv_store16(float *y, size_t q4, size_t n, const __m512 *acc) {
    __m512 s = fti__hsum16_avx512(acc);
    __mmask8 m = (__mmask8)((1u << n) - 1u);
    _mm_mask_storeu_ps(y, m, _mm512_castps512_ps128(s));
    _mm_mask_storeu_ps(y + q4, m, _mm512_extractf32x4_ps(s, 1));
    _mm_mask_storeu_ps(y + 2 * q4, m, _mm512_extractf32x4_ps(s, 2));
    _mm_mask_storeu_ps(y + 3 * q4, m, _mm512_extractf32x4_ps(s, 3));
}

/* One row's step over a group of 4 Q8_0 blocks (136 bytes at wb, loaded as l0, l1 and the last
 * 8 bytes): vpermt2b gathers each pair's 64 weight bytes and the 4 fp16 scales; dpbusd multiplies
 * w + 128 (unsigned: w ^ 0x80) by x, starting from -16·Σx per lane (8 lanes per block), which
 * takes the 128·Σx back out exactly in int32; each block's 8 lanes are then scaled by its wd·xd. */
#define FTI__Q8_VNNI_STEP(acc, l0, l1, wb, xg, i0, i1, xd4)                                        \
    do {                                                                                           \
        __m512i l2_ = _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)((wb) + 128)));     \
        __m512i p0_ = _mm512_xor_si512(_mm512_permutex2var_epi8(l0, idx_a, l1), flip);             \
        __m512i p1_ = _mm512_xor_si512(_mm512_permutex2var_epi8(l1, idx_b, l2_), flip);            \
        __m512 s4_ = _mm512_castps128_ps512(_mm_mul_ps(                                           \
            _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutex2var_epi8(l0, idx_d, l1))), xd4)); \
        __m512i d0_ = _mm512_dpbusd_epi32(i0, p0_, _mm512_loadu_si512((const void *)(xg)));        \
        __m512i d1_ = _mm512_dpbusd_epi32(i1, p1_, _mm512_loadu_si512((const void *)((xg) + 64))); \
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0_), _mm512_permutexvar_ps(sp01, s4_), acc);    \
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1_), _mm512_permutexvar_ps(sp23, s4_), acc);    \
    } while (0)

/* A Q8_0 row's blocks past the last whole group of 4 (1-3), each a dpbusd over its 32 bytes
 * (8 int32 lanes) scaled by its wd·xd into lanes 0-7 of the row's accumulator. |w| (unsigned)
 * times x with w's sign: exact for w = -128 too (|x| times w with x's sign would wrap it), x
 * being the activations' own quantization (-127..127). */
FTI__VNNI static __m512 fti__q8_vnni_rest(const fti_block_q8_0 *w, const int8_t *xq,
                                          const float *xd, size_t b0, size_t nb, __m512 acc) {
    size_t b;
    for (b = b0; b < nb; b++) {
        __m256i wv = _mm256_loadu_si256((const __m256i *)w[b].qs);
        __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + b * FTI_QK));
        __m256i d = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(wv),
                                        _mm256_sign_epi8(xv, wv));
        acc = _mm512_mask3_fmadd_ps(_mm512_cvtepi32_ps(_mm512_castsi256_si512(d)),
                                    _mm512_set1_ps(_cvtsh_ss(w[b].d) * xd[b]), acc, 0xff);
    }
    return acc;
}

/* Q8_0 with VNNI, four blocks per step (FTI__Q8_VNNI_STEP) and four rows at a time, rows i, i+q,
 * i+2q, i+3q (four sequential streams); a row left over goes alone through the same steps, so
 * every row's result is the same bits wherever it falls. */
FTI__VNNI static void fti__gemv_q8_0_vnni(const void *W, size_t row_bytes, size_t rows,
                                          const int8_t *xq, const float *xd, const int32_t *xs,
                                          size_t nb, float *y) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __m512i sp01 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i sp23 = _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m512 zero = _mm512_setzero_ps();
    size_t ng = nb / 4, g, r, j, q4, st;
    __m512 acc[16];
    __m512i idx_a, idx_b, idx_d;
    unsigned char ia[64], ib[64], id[64];
    for (j = 0; j < 64; j++) {
        ia[j] = (unsigned char)(j < 32 ? 2 + j : 36 + (j - 32)); /* blocks 0, 1 from l0, l1 */
        ib[j] = (unsigned char)(j < 32 ? 6 + j : 40 + (j - 32)); /* blocks 2, 3 from l1, l2 */
        id[j] = (unsigned char)(j < 8 ? 34 * (j / 2) + j % 2 : 0); /* scales at 0, 34, 68, 102 */
    }
    idx_a = _mm512_loadu_si512((const void *)ia);
    idx_b = _mm512_loadu_si512((const void *)ib);
    idx_d = _mm512_loadu_si512((const void *)id);
    q4 = rows / 4;
    st = q4 * row_bytes;
    for (r = 0; r < q4; r++) {
        const unsigned char *wb = (const unsigned char *)W + r * row_bytes;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        size_t ri = r % 4;
        for (g = 0; g < ng; g++, wb += 136) {
            const int8_t *xg = xq + g * 128;
            __m128i s16 = _mm_loadu_si128((const __m128i *)(xs + g * 4));
            __m512i x16 = _mm512_castsi128_si512(_mm_sub_epi32(_mm_setzero_si128(),
                                                               _mm_slli_epi32(s16, 4)));
            __m512i i0 = _mm512_permutexvar_epi32(sp01, x16),
                    i1 = _mm512_permutexvar_epi32(sp23, x16);
            __m128 xd4 = _mm_loadu_ps(xd + g * 4);
            __m512i l0 = _mm512_loadu_si512((const void *)wb);
            __m512i m0 = _mm512_loadu_si512((const void *)(wb + 64));
            __m512i l1 = _mm512_loadu_si512((const void *)(wb + st));
            __m512i m1 = _mm512_loadu_si512((const void *)(wb + st + 64));
            __m512i l2 = _mm512_loadu_si512((const void *)(wb + 2 * st));
            __m512i m2 = _mm512_loadu_si512((const void *)(wb + 2 * st + 64));
            __m512i l3 = _mm512_loadu_si512((const void *)(wb + 3 * st));
            __m512i m3 = _mm512_loadu_si512((const void *)(wb + 3 * st + 64));
            FTI__Q8_VNNI_STEP(a0, l0, m0, wb, xg, i0, i1, xd4);
            FTI__Q8_VNNI_STEP(a1, l1, m1, wb + st, xg, i0, i1, xd4);
            FTI__Q8_VNNI_STEP(a2, l2, m2, wb + 2 * st, xg, i0, i1, xd4);
            FTI__Q8_VNNI_STEP(a3, l3, m3, wb + 3 * st, xg, i0, i1, xd4);
        }
        if (ng * 4 < nb) { /* the blocks past the last group, one by one */
            wb = (const unsigned char *)W + r * row_bytes;
            a0 = fti__q8_vnni_rest((const fti_block_q8_0 *)wb, xq, xd, ng * 4, nb, a0);
            a1 = fti__q8_vnni_rest((const fti_block_q8_0 *)(wb + st), xq, xd, ng * 4, nb, a1);
            a2 = fti__q8_vnni_rest((const fti_block_q8_0 *)(wb + 2 * st), xq, xd, ng * 4, nb, a2);
            a3 = fti__q8_vnni_rest((const fti_block_q8_0 *)(wb + 3 * st), xq, xd, ng * 4, nb, a3);
        }
        acc[ri] = a0;
        acc[4 + ri] = a1;
        acc[8 + ri] = a2;
        acc[12 + ri] = a3;
        if (ri == 3 || r + 1 == q4) { /* rows r-ri .. r of every stream */
            for (j = ri + 1; j < 4; j++) acc[j] = acc[4 + j] = acc[8 + j] = acc[12 + j] = zero;
            fti__qv_store16(y + r - ri, q4, ri + 1, acc);
        }
    }
    for (r = 4 * q4; r < rows; r++) {
        const unsigned char *wb = (const unsigned char *)W + r * row_bytes;
        acc[0] = _mm512_setzero_ps();
        for (g = 0; g < ng; g++, wb += 136) {
            __m128i s16 = _mm_loadu_si128((const __m128i *)(xs + g * 4));
            __m512i x16 = _mm512_castsi128_si512(_mm_sub_epi32(_mm_setzero_si128(),
                                                               _mm_slli_epi32(s16, 4)));
            __m512i i0 = _mm512_permutexvar_epi32(sp01, x16),
                    i1 = _mm512_permutexvar_epi32(sp23, x16);
            __m512i l0 = _mm512_loadu_si512((const void *)wb);
            __m512i m0 = _mm512_loadu_si512((const void *)(wb + 64));
            FTI__Q8_VNNI_STEP(acc[0], l0, m0, wb, xq + g * 128, i0, i1, _mm_loadu_ps(xd + g * 4));
        }
        acc[0] = fti__q8_vnni_rest((const fti_block_q8_0 *)((const char *)W + r * row_bytes), xq,
                                   xd, ng * 4, nb, acc[0]);
        for (j = 1; j < 16; j++) acc[j] = zero;
        _mm512_mask_storeu_ps(y + r, 1, fti__hsum16_avx512(acc));
    }
}

/* A Q4_0 block's 32 nibbles in element order (elements 0..15 | 16..31). */
FTI__AVX2 static __m256i fti__q4_nibbles_avx2(const uint8_t *qs) {
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
    return _mm256_and_si256(v, _mm256_set1_epi8(15));
}

/* Q4_0 with VNNI, two blocks per zmm. The nibbles of blocks b, b+1 load as 128-bit lanes
 * [lo(b), lo(b+1), hi(b), hi(b+1)] (lo = elements 0..15, hi = 16..31), so x's lanes are
 * permuted to match (0xd8) and int32 lanes 0-3, 8-11 belong to b, 4-7, 12-15 to b+1.
 * dpbusd(nibbles, x) starts from -Σx per lane (4 lanes per block: -8·Σx... spread as 2·(-Σx)
 * per lane pair): each block's 8 lanes start at -Σx, which adds -8·Σx, undoing the +8 offset. */
FTI__VNNI static __m512 fti__q4_pair_vnni(const fti_block_q4_0 *w, const int8_t *xq, __m512i init,
                                          __m512 sc, __m512 acc) {
    __m256i q =
        _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)w[0].qs)),
                                _mm_loadu_si128((const __m128i *)w[1].qs), 1);
    __m512i wv =
        _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1),
                         _mm512_set1_epi8(15));
    __m512i xv = _mm512_loadu_si512((const void *)xq);
    __m512i d = _mm512_dpbusd_epi32(init, wv, _mm512_shuffle_i64x2(xv, xv, 0xd8));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), sc, acc);
}

FTI__VNNI static void fti__gemv_q4_0_vnni_pairs(const void *W, size_t row_bytes, size_t rows,
                                                const int8_t *xq, const float *xd,
                                                const int32_t *xs, size_t nb, float *y) {
    const __m512i lo = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
    const __m512i hi = _mm512_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512i zero = _mm512_setzero_si512();
    size_t r, b;
    for (r = 0; r < rows; r++) {
        const fti_block_q4_0 *w = (const fti_block_q4_0 *)((const char *)W + r * row_bytes);
        __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
        float s;
        for (b = 0; b + 4 <= nb; b += 4) {
            __m512 s4 = _mm512_castps128_ps512(FTI__SCALES4(w, b, xd));
            __m512i x4 = _mm512_sub_epi32(
                zero, _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(xs + b))));
            acc0 = fti__q4_pair_vnni(w + b, xq + b * FTI_QK, _mm512_permutexvar_epi32(lo, x4),
                                     _mm512_permutexvar_ps(lo, s4), acc0);
            acc1 = fti__q4_pair_vnni(w + b + 2, xq + (b + 2) * FTI_QK,
                                     _mm512_permutexvar_epi32(hi, x4),
                                     _mm512_permutexvar_ps(hi, s4), acc1);
        }
        s = fti__hsum_avx512(_mm512_add_ps(acc0, acc1));
        for (; b < nb; b++) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + b * FTI_QK));
            __m256i d =
                _mm256_dpbusd_epi32(_mm256_set1_epi32(-xs[b]), fti__q4_nibbles_avx2(w[b].qs), xv);
            s += (float)fti__hsum_epi32_avx2(d) * (_cvtsh_ss(w[b].d) * xd[b]);
        }
        y[r] = s;
    }
}

/* Groups of 4 blocks the VBMI Q4_0 kernel rearranges on the stack: n_in up to 8192. */
enum { FTI__Q4_STACK_GROUPS = 64 };

/* One row's step over a group of 4 Q4_0 blocks (72 bytes at wb, loaded as l0 and the group's
 * last 8 bytes, hi8): vpermt2b gathers the 4×16 nibble bytes; the low nibbles (elements 0..15 of
 * each block: AND 15) and the high nibbles (16..31: one gf2p8affineqb, a bit matrix that shifts
 * each byte right by 4, instead of a 16-bit shift and an AND) each make one dpbusd against x
 * rearranged to match, starting from init (-2·Σx per lane: 4 lanes per block undo the +8 offset
 * exactly in int32); the 16 int32 lanes (4 per block) are scaled by the block's wd·xd (sc) into
 * the row's float accumulator. */
#define FTI__Q4_VNNI_STEP(acc, l0, hi8, xg, init, sc)                                              \
    do {                                                                                           \
        __m512i q_ = _mm512_permutex2var_epi8(l0, idx_q, hi8);                                     \
        __m512i d_ = _mm512_dpbusd_epi32(init, _mm512_and_si512(q_, m4),                           \
                                         _mm512_loadu_si512((const void *)(xg)));                  \
        d_ = _mm512_dpbusd_epi32(d_, _mm512_gf2p8affine_epi64_epi8(q_, shr4, 0),                   \
                                 _mm512_loadu_si512((const void *)((xg) + 64)));                   \
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d_), sc, acc);                                    \
    } while (0)
/* a whole group's last 8 bytes (block 3's qs[8..15]) as the second vpermt2b source */
#define FTI__Q4_HI8(wb) _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)((wb) + 64)))

/* Q4_0 with VNNI + VBMI + GFNI, four blocks (72 bytes) per step and four rows at a time: x is
 * rearranged once per call (FTI__Q4_VNNI_STEP), and the four rows' 16 fp16 scales are gathered by
 * three byte permutes into one conversion, times xd, then spread to each row's lanes. The rows
 * read as four streams. The last 1-3 blocks (nb % 4) are one more step over a partial group:
 * masked loads (never past the row), x and the offsets zero for the missing blocks (which then
 * add exact zeros). A row left over goes alone through the same steps with the same values (its
 * scales gathered by one permute), so every row's result is the same bits wherever it falls. */
FTI__VNNI static void fti__gemv_q4_0_vnni(const void *W, size_t row_bytes, size_t rows,
                                          const int8_t *xq, const float *xd, const int32_t *xs,
                                          size_t nb, float *y) {
    int8_t xr[FTI__Q4_STACK_GROUPS * 128];
    int32_t xi[FTI__Q4_STACK_GROUPS * 16];
    const __m512 zero = _mm512_setzero_ps();
    const __m512i shr4 = _mm512_set1_epi64(0x1020408000000000LL); /* byte >> 4 */
    size_t ng = nb / 4, tail = nb % 4, ngt = ng + (tail != 0), g, r, j, q4, st;
    /* the partial group: its 18·tail bytes, its tail scales xd */
    const __mmask64 mt = tail ? (__mmask64)((1ull << (18 * tail)) - 1u) : 0;
    const __mmask8 mx = (__mmask8)((1u << tail) - 1u);
    __m512 acc[16];
    __m512i idx_q, idx_d, idx_d2;
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512i spread[4];
    unsigned char iq[64], id[64], id2[64];
    if (ngt > FTI__Q4_STACK_GROUPS) {
        fti__gemv_q4_0_vnni_pairs(W, row_bytes, rows, xq, xd, xs, nb, y);
        return;
    }
    for (j = 0; j < 64; j++) {
        iq[j] = (unsigned char)(18 * (j / 16) + 2 + j % 16); /* qs bytes of block j/16 */
        /* fp16 scales: the four of one row (id), of two rows (id2: the second from the other
         * source, 64 + ...) */
        id[j] = (unsigned char)(j < 8 ? 18 * (j / 2) + j % 2 : 0);
        id2[j] = (unsigned char)(j < 16 ? (j / 8) * 64 + 18 * ((j % 8) / 2) + j % 2 : 0);
    }
    idx_q = _mm512_loadu_si512((const void *)iq);
    idx_d = _mm512_loadu_si512((const void *)id);
    idx_d2 = _mm512_loadu_si512((const void *)id2);
    for (r = 0; r < 4; r++) { /* lanes 4j..4j+3 take row r's block j: float 4r + j */
        int32_t sp[16];
        for (j = 0; j < 16; j++) sp[j] = (int32_t)(4 * r + j / 4);
        spread[r] = _mm512_loadu_si512((const void *)sp);
    }
    /* x of 4 blocks as [x0[0:16] x1[0:16] x2[0:16] x3[0:16]] + highs; zeros past nb */
    memset(xr + ng * 128, 0, (ngt - ng) * 128);
    memset(xi + ng * 16, 0, (ngt - ng) * 16 * sizeof(int32_t));
    for (g = 0; g < ngt; g++) {
        for (j = 0; j < 4 && g * 4 + j < nb; j++) {
            int32_t v = -2 * xs[g * 4 + j];
            memcpy(xr + g * 128 + j * 16, xq + (g * 4 + j) * FTI_QK, 16);
            memcpy(xr + g * 128 + 64 + j * 16, xq + (g * 4 + j) * FTI_QK + 16, 16);
            xi[g * 16 + j * 4] = xi[g * 16 + j * 4 + 1] = v;
            xi[g * 16 + j * 4 + 2] = xi[g * 16 + j * 4 + 3] = v;
        }
    }
    /* rows i, i+q, i+2q, i+3q together: four sequential streams */
    q4 = rows / 4;
    st = q4 * row_bytes;
    for (r = 0; r < q4; r++) {
        const unsigned char *wb = (const unsigned char *)W + r * row_bytes;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        size_t ri = r % 4;
        for (g = 0; g < ngt; g++, wb += 72) {
            const int8_t *xg = xr + g * 128;
            int part = g == ng; /* the partial group */
            __m512i init = _mm512_loadu_si512((const void *)(xi + g * 16));
            __m512i l0, l1, l2, l3, h0, h1, h2, h3, d01, d23;
            __m128 xd4;
            __m512 sc;
            if (!part) {
                l0 = _mm512_loadu_si512((const void *)wb);
                l1 = _mm512_loadu_si512((const void *)(wb + st));
                l2 = _mm512_loadu_si512((const void *)(wb + 2 * st));
                l3 = _mm512_loadu_si512((const void *)(wb + 3 * st));
                h0 = FTI__Q4_HI8(wb);
                h1 = FTI__Q4_HI8(wb + st);
                h2 = FTI__Q4_HI8(wb + 2 * st);
                h3 = FTI__Q4_HI8(wb + 3 * st);
                xd4 = _mm_loadu_ps(xd + g * 4);
            } else {
                l0 = _mm512_maskz_loadu_epi8(mt, (const void *)wb);
                l1 = _mm512_maskz_loadu_epi8(mt, (const void *)(wb + st));
                l2 = _mm512_maskz_loadu_epi8(mt, (const void *)(wb + 2 * st));
                l3 = _mm512_maskz_loadu_epi8(mt, (const void *)(wb + 3 * st));
                h0 = h1 = h2 = h3 = _mm512_setzero_si512();
                xd4 = _mm_maskz_loadu_ps(mx, xd + g * 4);
            }
            d01 = _mm512_permutex2var_epi8(l0, idx_d2, l1);
            d23 = _mm512_permutex2var_epi8(l2, idx_d2, l3);
            sc = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_inserti128_si256(
                                   _mm512_castsi512_si256(d01), _mm512_castsi512_si128(d23), 1)),
                               _mm512_broadcast_f32x4(xd4));
            FTI__Q4_VNNI_STEP(a0, l0, h0, xg, init, _mm512_permutexvar_ps(spread[0], sc));
            FTI__Q4_VNNI_STEP(a1, l1, h1, xg, init, _mm512_permutexvar_ps(spread[1], sc));
            FTI__Q4_VNNI_STEP(a2, l2, h2, xg, init, _mm512_permutexvar_ps(spread[2], sc));
            FTI__Q4_VNNI_STEP(a3, l3, h3, xg, init, _mm512_permutexvar_ps(spread[3], sc));
        }
        acc[ri] = a0;
        acc[4 + ri] = a1;
        acc[8 + ri] = a2;
        acc[12 + ri] = a3;
        if (ri == 3 || r + 1 == q4) { /* rows r-ri .. r of every stream */
            for (j = ri + 1; j < 4; j++) acc[j] = acc[4 + j] = acc[8 + j] = acc[12 + j] = zero;
            fti__qv_store16(y + r - ri, q4, ri + 1, acc);
        }
    }
    for (r = 4 * q4; r < rows; r++) {
        const unsigned char *wb = (const unsigned char *)W + r * row_bytes;
        acc[0] = _mm512_setzero_ps();
        for (g = 0; g < ngt; g++, wb += 72) {
            int part = g == ng;
            __m512i init = _mm512_loadu_si512((const void *)(xi + g * 16));
            __m512i l0 = part ? _mm512_maskz_loadu_epi8(mt, (const void *)wb)
                              : _mm512_loadu_si512((const void *)wb);
            __m512i h0 = part ? _mm512_setzero_si512() : FTI__Q4_HI8(wb);
            __m128 xd4 = part ? _mm_maskz_loadu_ps(mx, xd + g * 4) : _mm_loadu_ps(xd + g * 4);
            __m512 sc = _mm512_castps128_ps512(_mm_mul_ps(
                _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi8(idx_d, l0))), xd4));
            FTI__Q4_VNNI_STEP(acc[0], l0, h0, xr + g * 128, init,
                              _mm512_permutexvar_ps(spread[0], sc));
        }
        for (j = 1; j < 16; j++) acc[j] = zero;
        _mm512_mask_storeu_ps(y + r, 1, fti__hsum16_avx512(acc));
    }
}

/* --- AVX-512 BF16: the bf16 GEMM (FTI_MM_BF16) ----------------------------------------------
 * Handed out in the AVX-512 tables but used only when the CPU has AVX512_BF16 (CPUID leaf 7.1;
 * fti__bf16_ok in 02_kernels.c). */
#if (defined(__clang__) && __clang_major__ >= 9) || (!defined(__clang__) && __GNUC__ >= 10)
#define FTI__BF16                                                                                  \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")))

/* One row of pair words: vcvtne2ps2bf16 puts lo's 16 values in the low words and hi's in the
 * high words, vpermw interleaves them into (lo, hi) pairs. */
FTI__BF16 static void fti__pack_bf16_avx512(uint32_t *dst, const float *lo, const float *hi,
                                            size_t n, size_t width) {
    static const uint16_t perm[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                      8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i idx = _mm512_loadu_si512((const void *)perm);
    size_t i;
    for (i = 0; i < width; i += 16) {
        __mmask16 m = fti__tail16(i < n ? n - i : 0), ms = fti__tail16(width - i);
        __m512 l = _mm512_maskz_loadu_ps(m, lo + i);
        __m512 h = hi ? _mm512_maskz_loadu_ps(m, hi + i) : _mm512_setzero_ps();
        __m512i v = (__m512i)_mm512_cvtne2ps_pbh(h, l);
        _mm512_mask_storeu_epi32(dst + i, ms, _mm512_permutexvar_epi16(idx, v));
    }
}

#define FTI__UKB_ROW(i)                                                                            \
    do {                                                                                           \
        t = (__m512bh)_mm512_set1_epi32((int)a[i]);                                                \
        c##i##_0 = _mm512_dpbf16_ps(c##i##_0, t, b0);                                              \
        c##i##_1 = _mm512_dpbf16_ps(c##i##_1, t, b1);                                              \
    } while (0)

/* bf16 micro-kernel 12×32: the fp32 kernel's register tile, one k-pair per step (vdpbf16ps adds
 * two products per lane: twice the multiply-adds of an FMA per instruction). */
FTI__BF16 static void fti__ukernel_bf16_avx512(size_t kp, const uint32_t *a, const uint32_t *b,
                                               float *c, size_t ldc, int acc) {
    __m512 c0_0 = _mm512_setzero_ps(), c0_1 = c0_0, c1_0 = c0_0, c1_1 = c0_0, c2_0 = c0_0,
           c2_1 = c0_0, c3_0 = c0_0, c3_1 = c0_0, c4_0 = c0_0, c4_1 = c0_0, c5_0 = c0_0,
           c5_1 = c0_0, c6_0 = c0_0, c6_1 = c0_0, c7_0 = c0_0, c7_1 = c0_0, c8_0 = c0_0,
           c8_1 = c0_0, c9_0 = c0_0, c9_1 = c0_0, c10_0 = c0_0, c10_1 = c0_0, c11_0 = c0_0,
           c11_1 = c0_0;
    __m512bh b0, b1, t;
    size_t p;
    for (p = 0; p < kp; p++, a += 12, b += 32) {
        b0 = (__m512bh)_mm512_loadu_si512((const void *)b);
        b1 = (__m512bh)_mm512_loadu_si512((const void *)(b + 16));
        FTI__UKB_ROW(0);
        FTI__UKB_ROW(1);
        FTI__UKB_ROW(2);
        FTI__UKB_ROW(3);
        FTI__UKB_ROW(4);
        FTI__UKB_ROW(5);
        FTI__UKB_ROW(6);
        FTI__UKB_ROW(7);
        FTI__UKB_ROW(8);
        FTI__UKB_ROW(9);
        FTI__UKB_ROW(10);
        FTI__UKB_ROW(11);
    }
    FTI__UK5_STORE(0);
    FTI__UK5_STORE(1);
    FTI__UK5_STORE(2);
    FTI__UK5_STORE(3);
    FTI__UK5_STORE(4);
    FTI__UK5_STORE(5);
    FTI__UK5_STORE(6);
    FTI__UK5_STORE(7);
    FTI__UK5_STORE(8);
    FTI__UK5_STORE(9);
    FTI__UK5_STORE(10);
    FTI__UK5_STORE(11);
}
#define FTI__PACK_BF16_AVX512 fti__pack_bf16_avx512
#define FTI__UKERNEL_BF16_AVX512 fti__ukernel_bf16_avx512
#else /* a compiler without AVX512_BF16 intrinsics: FTI_MM_BF16 computes in fp32 */
#define FTI__PACK_BF16_AVX512 NULL
#define FTI__UKERNEL_BF16_AVX512 NULL
#endif

#endif /* !FTI_NO_AVX512 */

static const fti_kernels fti__kernels_avx2_table = {
    FTI_ISA_AVX2,
    "avx2",
    6,
    16,
    256,
    120,
    512,
    fti__ukernel_avx2,
    NULL,
    NULL,
    NULL,
    fti__gemv_f32_avx2,
    fti__gemv_f16_avx2,
    fti__gemv_bf16_avx2,
    fti__gemv_q8_0_avx2,
    fti__gemv_q4_0_avx2,
    fti__quantize_x_avx2,
    fti__dot_avx2,
    fti__axpy_avx2,
    fti__scale_avx2,
    fti__max_avx2,
    fti__exp_sum_avx2,
    fti__mul_scaled_avx2,
    fti__rmsnorm_bwd_row_avx2,
    fti__softmax_bwd_row_avx2,
    fti__silu_fwd_avx2,
    fti__silu_bwd_avx2,
    fti__swiglu_fwd_avx2,
    fti__swiglu_bwd_avx2,
    fti__adamw_avx2,
    fti__f16_to_f32_avx2,
    fti__f32_to_f16_avx2,
    fti__bf16_to_f32_avx2,
    fti__f32_to_bf16_ref,
    fti__quantize_q8_0_avx2,
    fti__quantize_q4_0_avx2,
    fti__dequantize_q8_0_avx2,
    fti__dequantize_q4_0_avx2,
};

static const fti_kernels *fti__kernels_avx2(void) { return &fti__kernels_avx2_table; }

#if !defined(FTI_NO_AVX512)
/* Two AVX-512 tables: with VNNI, VBMI and GFNI (Ice Lake, Zen 4+) the quantized dots use
 * vpdpbusd (and vpermb + gf2p8affineqb to unpack Q4_0). */
static const fti_kernels fti__kernels_avx512_table = {
    FTI_ISA_AVX512,
    "avx512",
    12,
    32,
    384,
    120,
    1024,
    fti__ukernel_avx512,
    fti__ukernel_sa_avx512,
    FTI__PACK_BF16_AVX512,
    FTI__UKERNEL_BF16_AVX512,
    fti__gemv_f32_avx512,
    fti__gemv_f16_avx512,
    fti__gemv_bf16_avx512,
    fti__gemv_q8_0_avx2,
    fti__gemv_q4_0_avx2,
    fti__quantize_x_avx512,
    fti__dot_avx512,
    fti__axpy_avx512,
    fti__scale_avx512,
    fti__max_avx512,
    fti__exp_sum_avx512,
    fti__mul_scaled_avx512,
    fti__rmsnorm_bwd_row_avx512,
    fti__softmax_bwd_row_avx512,
    fti__silu_fwd_avx512,
    fti__silu_bwd_avx512,
    fti__swiglu_fwd_avx512,
    fti__swiglu_bwd_avx512,
    fti__adamw_avx512,
    fti__f16_to_f32_avx2,
    fti__f32_to_f16_avx2,
    fti__bf16_to_f32_avx512,
    fti__f32_to_bf16_avx512,
    fti__quantize_q8_0_avx512,
    fti__quantize_q4_0_avx512,
    fti__dequantize_q8_0_avx512,
    fti__dequantize_q4_0_avx512,
};

static const fti_kernels fti__kernels_avx512vnni_table = {
    FTI_ISA_AVX512,
    "avx512",
    12,
    32,
    384,
    120,
    1024,
    fti__ukernel_avx512,
    fti__ukernel_sa_avx512,
    FTI__PACK_BF16_AVX512,
    FTI__UKERNEL_BF16_AVX512,
    fti__gemv_f32_avx512,
    fti__gemv_f16_avx512,
    fti__gemv_bf16_avx512,
    fti__gemv_q8_0_vnni,
    fti__gemv_q4_0_vnni,
    fti__quantize_x_avx512,
    fti__dot_avx512,
    fti__axpy_avx512,
    fti__scale_avx512,
    fti__max_avx512,
    fti__exp_sum_avx512,
    fti__mul_scaled_avx512,
    fti__rmsnorm_bwd_row_avx512,
    fti__softmax_bwd_row_avx512,
    fti__silu_fwd_avx512,
    fti__silu_bwd_avx512,
    fti__swiglu_fwd_avx512,
    fti__swiglu_bwd_avx512,
    fti__adamw_avx512,
    fti__f16_to_f32_avx2,
    fti__f32_to_f16_avx2,
    fti__bf16_to_f32_avx512,
    fti__f32_to_bf16_avx512,
    fti__quantize_q8_0_avx512,
    fti__quantize_q4_0_avx512,
    fti__dequantize_q8_0_avx512,
    fti__dequantize_q4_0_avx512,
};
#endif

static const fti_kernels *fti__kernels_avx512(unsigned features) {
#if !defined(FTI_NO_AVX512)
    const unsigned need = FTI_CPU_AVX512F | FTI_CPU_AVX512BW | FTI_CPU_AVX512VL | FTI_CPU_AVX2 |
                          FTI_CPU_FMA | FTI_CPU_F16C;
    if ((features & need) != need) return NULL;
    if ((features & (FTI_CPU_AVX512VNNI | FTI_CPU_AVX512VBMI | FTI_CPU_GFNI)) ==
        (FTI_CPU_AVX512VNNI | FTI_CPU_AVX512VBMI | FTI_CPU_GFNI))
        return &fti__kernels_avx512vnni_table;
    return &fti__kernels_avx512_table;
#endif
    (void)features;
    return NULL;
}
FTI__X86_WARN_POP
#endif /* FTI__X86 */
