/* === kernels: dtypes, conversions, references, dispatch, GEMM/GEMV drivers === */
/*
 * Layout of the implementation (amalgamated in name order):
 *   02_kernels.c           this file: dtype helpers, fp16/bf16 conversion, the scalar
 *                          references (fti__*_ref), the table struct, the blocked GEMM driver
 *                          and the GEMV driver (shared by every ISA: only micro-kernels and row
 *                          kernels differ) and the public wrappers.
 *   02_kernels_isa_neon.c  aarch64 NEON variants and table.
 *   02_kernels_isa_x86.c   x86-64 AVX2+FMA and AVX-512 variants and tables (per-function target
 *                          attributes; nothing needs -mavx2 on the command line), CPUID.
 *   02_kernels_select.c    CPU features, fti_kernels_get and the FTI_ISA override.
 * The public wrappers here reach the tables only through fti_kernels_get.
 */
#include "02_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if !defined(FTI_NO_SIMD) && (defined(__GNUC__) || defined(__clang__)) && !defined(__TINYC__)
#if defined(__x86_64__)
#define FTI__X86 1
#include <emmintrin.h> /* SSE2 is baseline on x86-64: used by the GEMM packing */
#elif defined(__aarch64__) && defined(__ARM_NEON)
#define FTI__NEON 1
#include <arm_neon.h>
#endif
#endif

/* === kernels: the table === */

/* GEMM micro-kernel: the (mr,nr) tile c = a·b over kc steps, where a is a packed A panel
 * (kc × mr, column of mr per step) and b a packed B panel (kc × nr). acc = 0 stores the tile,
 * acc = 1 adds it: either way each element is (Σ_p a·b in p order) then stored or added. */
typedef void (*fti__ukernel_fn)(size_t kc, const float *a, const float *b, float *c, size_t ldc,
                                int acc);
/* The same tile with op(A) read in place from a TRANS_A source: the mr values of step p are
 * a[p·lda .. p·lda + mr) (no packing of A; same products in the same order). */
typedef void (*fti__ukernel_sa_fn)(size_t kc, const float *a, size_t lda, const float *b,
                                   float *c, size_t ldc, int acc);
/* bf16 GEMM (FTI_MM_BF16): panels hold pairs of k-consecutive values as bf16 in one 32-bit word
 * (even k in the low half). pack_bf16 writes one panel row of pairs: dst[i] = (lo[i], hi[i]) for
 * i < n (hi = NULL pairs with 0: an odd kc), dst[i] = 0 for n <= i < width; ukernel_bf16 is the
 * (mr,nr) micro-kernel over kp pairs: per pair c += a_hi·b_hi, then c += a_lo·b_lo (fp32 adds of
 * exact products, as vdpbf16ps). */
typedef void (*fti__pack_bf16_fn)(uint32_t *dst, const float *lo, const float *hi, size_t n,
                                  size_t width);
typedef void (*fti__ukernel_bf16_fn)(size_t kp, const uint32_t *a, const uint32_t *b, float *c,
                                     size_t ldc, int acc);
/* y[r] (=, or += when acc) W[r]·x for r in [0, rows): W rows are row_bytes apart. */
typedef void (*fti__gemv_fn)(const void *W, size_t row_bytes, size_t rows, const float *x, size_t n,
                             float *y, int acc);
/* Quantized rows against activations quantized to 32-blocks: xq (nb·32 int8), xd (nb scales),
 * xs (nb block sums of xq, used by Q4_0). y[r] = Σ_b wd·xd[b]·(int dot of block b). */
typedef void (*fti__gemv_q_fn)(const void *W, size_t row_bytes, size_t rows, const int8_t *xq,
                               const float *xd, const int32_t *xs, size_t nb, float *y);

struct fti_kernels {
    fti_isa isa;
    const char *name;
    /* GEMM */
    size_t mr, nr, kc, mc, nc;
    fti__ukernel_fn ukernel;
    fti__ukernel_sa_fn ukernel_sa; /* NULL: TRANS_A sources are packed like the others */
    fti__pack_bf16_fn pack_bf16;       /* NULL: FTI_MM_BF16 computes in fp32 */
    fti__ukernel_bf16_fn ukernel_bf16;
    /* GEMV rows */
    fti__gemv_fn gemv_f32, gemv_f16, gemv_bf16;
    fti__gemv_q_fn gemv_q8_0, gemv_q4_0;
    void (*quantize_x)(const float *x, size_t nb, int8_t *xq, float *xd, int32_t *xs);
    /* BLAS-1 and row primitives */
    float (*dot)(const float *x, const float *y, size_t n);
    void (*axpy)(float *y, float a, const float *x, size_t n);
    void (*scale)(float *x, float a, size_t n);
    float (*max)(const float *x, size_t n);
    float (*exp_sum)(float *y, const float *x, size_t n, float sub); /* y = exp(x-sub), Σy */
    void (*mul_scaled)(float *out, const float *x, const float *w, float s, size_t n);
    void (*rmsnorm_bwd_row)(float *dx, float *dw, const float *dout, const float *x, const float *w,
                            float rstd, size_t n);
    void (*softmax_bwd_row)(float *dx, const float *p, const float *dp, size_t n);
    void (*silu_fwd)(float *y, const float *x, size_t n);
    void (*silu_bwd)(float *dx, const float *x, const float *dy, size_t n);
    void (*swiglu_fwd)(float *h, const float *g, const float *u, size_t n);
    void (*swiglu_bwd)(float *dg, float *du, const float *g, const float *u, const float *dh,
                       size_t n);
    void (*adamw)(float *p, const float *g, float *m, float *v, size_t n, const float c[8]);
    void (*f16_to_f32)(float *dst, const uint16_t *src, size_t n);
    void (*f32_to_f16)(uint16_t *dst, const float *src, size_t n);
    void (*bf16_to_f32)(float *dst, const uint16_t *src, size_t n);
    void (*f32_to_bf16)(uint16_t *dst, const float *src, size_t n);
    void (*quantize_q8_0)(fti_block_q8_0 *dst, const float *src, size_t nb);
    void (*quantize_q4_0)(fti_block_q4_0 *dst, const float *src, size_t nb);
    void (*dequantize_q8_0)(float *dst, const fti_block_q8_0 *src, size_t nb);
    void (*dequantize_q4_0)(float *dst, const fti_block_q4_0 *src, size_t nb);
};

/* === kernels: dtypes and conversions === */

const char *fti_dtype_name(fti_dtype t) {
    switch (t) {
    case FTI_DTYPE_F32: return "f32";
    case FTI_DTYPE_F16: return "f16";
    case FTI_DTYPE_Q4_0: return "q4_0";
    case FTI_DTYPE_Q8_0: return "q8_0";
    case FTI_DTYPE_BF16: return "bf16";
    }
    return "?";
}

size_t fti_dtype_block_elems(fti_dtype t) {
    switch (t) {
    case FTI_DTYPE_F32:
    case FTI_DTYPE_F16:
    case FTI_DTYPE_BF16: return 1;
    case FTI_DTYPE_Q4_0:
    case FTI_DTYPE_Q8_0: return FTI_QK;
    }
    return 0;
}

size_t fti_dtype_block_bytes(fti_dtype t) {
    switch (t) {
    case FTI_DTYPE_F32: return 4;
    case FTI_DTYPE_F16:
    case FTI_DTYPE_BF16: return 2;
    case FTI_DTYPE_Q4_0: return sizeof(fti_block_q4_0);
    case FTI_DTYPE_Q8_0: return sizeof(fti_block_q8_0);
    }
    return 0;
}

size_t fti_dtype_row_bytes(fti_dtype t, size_t n) {
    size_t be = fti_dtype_block_elems(t), out;
    if (be == 0 || n % be != 0) return 0;
    if (!fti_size_mul(n / be, fti_dtype_block_bytes(t), &out)) return 0;
    return out;
}

static uint32_t fti__f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float fti__bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float fti_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return fti__bits_f32(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
        float f = (float)m * (1.0f / 16777216.0f); /* subnormal: m · 2^-24, exact */
        return sign ? -f : f;
    }
    return fti__bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

uint16_t fti_f32_to_f16(float f) {
    uint32_t x = fti__f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u) /* inf or NaN (NaN stays quiet NaN) */
        return (uint16_t)(sign | 0x7c00u | (x > 0x7f800000u ? 0x200u | ((x >> 13) & 0x3ffu) : 0));
    if (x >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to inf */
    if (x < 0x38800000u) {
        /* result is subnormal (or zero): adding 0.5 (ulp 2^-24) rounds |f| to the f16
         * subnormal grid with round-to-nearest-even; the low bits are the f16 mantissa. */
        float a = fti__bits_f32(x) + 0.5f;
        return (uint16_t)(sign | (fti__f32_bits(a) - 0x3f000000u));
    }
    /* normal: rebias the exponent (127 -> 15) and round the 13 dropped bits to nearest even */
    x += 0xc8000fffu + ((x >> 13) & 1u);
    return (uint16_t)(sign | (x >> 13));
}

float fti_bf16_to_f32(uint16_t h) { return fti__bits_f32((uint32_t)h << 16); }

uint16_t fti_f32_to_bf16(float f) {
    uint32_t x = fti__f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* === kernels: scalar references (the specification) === */

/* C(M,N) = op(A)·op(B) (or +=), one float accumulator per element, p in order. */
static void fti__matmul_ref(unsigned flags, size_t M, size_t N, size_t K, const float *A,
                            size_t lda, const float *B, size_t ldb, float *C, size_t ldc) {
    size_t i, j, p;
    for (i = 0; i < M; i++) {
        for (j = 0; j < N; j++) {
            float s = 0.0f;
            for (p = 0; p < K; p++) {
                float a = (flags & FTI_MM_TRANS_A) ? A[p * lda + i] : A[i * lda + p];
                float b = (flags & FTI_MM_TRANS_B) ? B[j * ldb + p] : B[p * ldb + j];
                s += a * b;
            }
            if (flags & FTI_MM_ACCUMULATE)
                C[i * ldc + j] += s;
            else
                C[i * ldc + j] = s;
        }
    }
}

/* The bf16 product (FTI_MM_BF16), the specification of the blocked bf16 path: inputs rounded to
 * bf16; K cut into blocks of kc (the table's fti__gemm_kc); within a block the pairs
 * (2q, 2q+1) are added to a zero fp32 sum, element 2q+1 first (an odd block pairs its last
 * element with 0); the first block's sum is stored (or added under ACCUMULATE), later blocks'
 * sums are added. Products of bf16 values are exact in fp32. */
static void fti__matmul_bf16_ref(unsigned flags, size_t M, size_t N, size_t K, const float *A,
                                 size_t lda, const float *B, size_t ldb, float *C, size_t ldc,
                                 size_t kc) {
    size_t i, j, p0, p;
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++)
            for (p0 = 0; p0 < K; p0 += kc) {
                size_t p1 = K - p0 < kc ? K : p0 + kc;
                float s = 0.0f;
                for (p = p0; p < p1; p += 2) {
                    float a[2], b[2];
                    int h;
                    for (h = 0; h < 2; h++) {
                        size_t q = p + (size_t)h;
                        float av = 0.0f, bv = 0.0f;
                        if (q < p1) {
                            av = (flags & FTI_MM_TRANS_A) ? A[q * lda + i] : A[i * lda + q];
                            bv = (flags & FTI_MM_TRANS_B) ? B[j * ldb + q] : B[q * ldb + j];
                        }
                        a[h] = fti_bf16_to_f32(fti_f32_to_bf16(av));
                        b[h] = fti_bf16_to_f32(fti_f32_to_bf16(bv));
                    }
                    s = s + a[1] * b[1];
                    s = s + a[0] * b[0];
                }
                if (p0 > 0 || (flags & FTI_MM_ACCUMULATE))
                    C[i * ldc + j] += s;
                else
                    C[i * ldc + j] = s;
            }
}

/* Scalar micro-kernel, 4×4. */
static void fti__ukernel_ref(size_t kc, const float *a, const float *b, float *c, size_t ldc,
                             int acc) {
    float t[4][4];
    size_t i, j, p;
    memset(t, 0, sizeof t);
    for (p = 0; p < kc; p++, a += 4, b += 4)
        for (i = 0; i < 4; i++)
            for (j = 0; j < 4; j++) t[i][j] += a[i] * b[j];
    for (i = 0; i < 4; i++)
        for (j = 0; j < 4; j++) c[i * ldc + j] = acc ? c[i * ldc + j] + t[i][j] : t[i][j];
}

/* bf16 panels, scalar: round to nearest even (fti_f32_to_bf16). */
static void fti__pack_bf16_ref(uint32_t *dst, const float *lo, const float *hi, size_t n,
                               size_t width) {
    size_t i;
    for (i = 0; i < n; i++)
        dst[i] = (uint32_t)fti_f32_to_bf16(lo[i]) | (uint32_t)fti_f32_to_bf16(hi ? hi[i] : 0.0f)
                                                        << 16;
    for (; i < width; i++) dst[i] = 0;
}

static float fti__bf16_lo(uint32_t w) { return fti_bf16_to_f32((uint16_t)(w & 0xffffu)); }
static float fti__bf16_hi(uint32_t w) { return fti_bf16_to_f32((uint16_t)(w >> 16)); }

/* Scalar bf16 micro-kernel, 4×4 (the scalar table's mr, nr). Products of two bf16 values are
 * exact in fp32, so each step is two rounded fp32 adds in vdpbf16ps's order (high pair first). */
static void fti__ukernel_bf16_ref(size_t kp, const uint32_t *a, const uint32_t *b, float *c,
                                  size_t ldc, int acc) {
    float t[4][4];
    size_t i, j, p;
    memset(t, 0, sizeof t);
    for (p = 0; p < kp; p++, a += 4, b += 4)
        for (i = 0; i < 4; i++)
            for (j = 0; j < 4; j++) {
                float s = t[i][j] + fti__bf16_hi(a[i]) * fti__bf16_hi(b[j]);
                t[i][j] = s + fti__bf16_lo(a[i]) * fti__bf16_lo(b[j]);
            }
    for (i = 0; i < 4; i++)
        for (j = 0; j < 4; j++) c[i * ldc + j] = acc ? c[i * ldc + j] + t[i][j] : t[i][j];
}

static float fti__dot_ref(const float *x, const float *y, size_t n) {
    float s = 0.0f;
    size_t i;
    for (i = 0; i < n; i++) s += x[i] * y[i];
    return s;
}

static void fti__axpy_ref(float *y, float a, const float *x, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) y[i] += a * x[i];
}

static void fti__scale_ref(float *x, float a, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) x[i] *= a;
}

static float fti__max_ref(const float *x, size_t n) {
    float m = -INFINITY;
    size_t i;
    for (i = 0; i < n; i++)
        if (x[i] > m || x[i] != x[i]) m = x[i] != x[i] ? x[i] : (x[i] > m ? x[i] : m);
    return m;
}

static float fti__exp_sum_ref(float *y, const float *x, size_t n, float sub) {
    double s = 0.0;
    size_t i;
    for (i = 0; i < n; i++) {
        y[i] = expf(x[i] - sub);
        s += y[i];
    }
    return (float)s;
}

static void fti__mul_scaled_ref(float *out, const float *x, const float *w, float s, size_t n) {
    size_t i;
    if (w)
        for (i = 0; i < n; i++) out[i] = x[i] * s * w[i];
    else
        for (i = 0; i < n; i++) out[i] = x[i] * s;
}

/* One row of RMSNorm backward: with xh = x·rstd and g = w·dout,
 * dx = rstd·(g - xh·mean(g·xh)); dw += dout·xh. */
static void fti__rmsnorm_bwd_row_ref(float *dx, float *dw, const float *dout, const float *x,
                                     const float *w, float rstd, size_t n) {
    double dot = 0.0;
    float mean;
    size_t i;
    for (i = 0; i < n; i++) dot += (double)(w ? w[i] * dout[i] : dout[i]) * (x[i] * rstd);
    mean = (float)(dot / (double)n);
    for (i = 0; i < n; i++) {
        float xh = x[i] * rstd, d = dout[i];
        if (dw) dw[i] += d * xh;
        dx[i] = rstd * ((w ? w[i] * d : d) - xh * mean);
    }
}

static void fti__softmax_bwd_row_ref(float *dx, const float *p, const float *dp, size_t n) {
    double s = 0.0;
    float sf;
    size_t i;
    for (i = 0; i < n; i++) s += (double)p[i] * dp[i];
    sf = (float)s;
    for (i = 0; i < n; i++) dx[i] = p[i] * (dp[i] - sf);
}

static float fti__sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

static void fti__silu_fwd_ref(float *y, const float *x, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) y[i] = x[i] * fti__sigmoid(x[i]);
}

static void fti__silu_bwd_ref(float *dx, const float *x, const float *dy, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        float s = fti__sigmoid(x[i]);
        dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

static void fti__swiglu_fwd_ref(float *h, const float *g, const float *u, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) h[i] = g[i] * fti__sigmoid(g[i]) * u[i];
}

static void fti__swiglu_bwd_ref(float *dg, float *du, const float *g, const float *u,
                                const float *dh, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        float s = fti__sigmoid(g[i]), d = dh[i], gi = g[i];
        du[i] = d * gi * s;
        dg[i] = d * u[i] * s * (1.0f + gi * (1.0f - s));
    }
}

/* c = {lr, beta1, beta2, eps, decay factor (1 - lr·wd or 1), grad_scale,
 *      1/(1-β1^t), 1/sqrt(1-β2^t)} */
static void fti__adamw_ref(float *p, const float *g, float *m, float *v, size_t n,
                           const float c[8]) {
    size_t i;
    for (i = 0; i < n; i++) {
        float gi = g[i] * c[5];
        float mi = c[1] * m[i] + (1.0f - c[1]) * gi;
        float vi = c[2] * v[i] + (1.0f - c[2]) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * c[4] - c[0] * (mi * c[6]) / (sqrtf(vi) * c[7] + c[3]);
    }
}

static void fti__f16_to_f32_ref(float *dst, const uint16_t *src, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) dst[i] = fti_f16_to_f32(src[i]);
}

static void fti__f32_to_f16_ref(uint16_t *dst, const float *src, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) dst[i] = fti_f32_to_f16(src[i]);
}

static void fti__bf16_to_f32_ref(float *dst, const uint16_t *src, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) dst[i] = fti_bf16_to_f32(src[i]);
}

static void fti__f32_to_bf16_ref(uint16_t *dst, const float *src, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) dst[i] = fti_f32_to_bf16(src[i]);
}

/* The weight quantizers' levels of x·id, ggml's, defined so that every SIMD variant computes
 * exactly the same bits (tests compare them byte for byte) for every input, NaN and ±inf
 * included (no undefined float-to-int conversion):
 *   Q8_0: q = roundf(x·id) (ties away from zero), clamped to ±127; NaN gives 0.
 *   Q4_0: q = min(15, (int)(x·id + 8.5f)) with both operations rounded in float, as ggml does:
 *         the product is stored through a volatile so that no compiler fuses it with the
 *         addition into an FMA (GCC does across statements in GNU modes), which would change
 *         the level of values within 2^-21 of a tie. x·id is clamped to ±9 first (only inf or
 *         a huge 1/d reach that) and the level to >= 0; NaN gives 8. */
static int fti__q8_level(float x, float id) {
    float v = x * id;
    if (v != v) return 0;
    v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
    return (int)roundf(v);
}

static int fti__q4_level(float x, float id) {
    volatile float p = x * id;
    float v = p;
    int q;
    if (v != v) v = 0.0f;
    v = v > 9.0f ? 9.0f : (v < -9.0f ? -9.0f : v);
    q = (int)(v + 8.5f);
    return q < 0 ? 0 : (q > 15 ? 15 : q);
}

/* Q8_0 (as ggml): d = max|x|/127 (NaN elements count as 0), id = 1/d (0 when d = 0). */
static void fti__quantize_q8_0_ref(fti_block_q8_0 *dst, const float *src, size_t nb) {
    size_t b, j;
    for (b = 0; b < nb; b++, src += FTI_QK) {
        float amax = 0.0f, d, id;
        for (j = 0; j < FTI_QK; j++) amax = fabsf(src[j]) > amax ? fabsf(src[j]) : amax;
        d = amax / 127.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = fti_f32_to_f16(d);
        for (j = 0; j < FTI_QK; j++) dst[b].qs[j] = (int8_t)fti__q8_level(src[j], id);
    }
}

/* Q4_0 (as ggml): mx = the first element of largest magnitude (NaN never; 0 if all are 0 or
 * NaN), d = mx/-8, id = 1/d (0 when d = 0). */
static void fti__quantize_q4_0_ref(fti_block_q4_0 *dst, const float *src, size_t nb) {
    size_t b, j;
    for (b = 0; b < nb; b++, src += FTI_QK) {
        float amax = 0.0f, mx = 0.0f, d, id;
        for (j = 0; j < FTI_QK; j++)
            if (fabsf(src[j]) > amax) {
                amax = fabsf(src[j]);
                mx = src[j];
            }
        d = mx / -8.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = fti_f32_to_f16(d);
        for (j = 0; j < FTI_QK / 2; j++)
            dst[b].qs[j] =
                (uint8_t)(fti__q4_level(src[j], id) | (fti__q4_level(src[j + 16], id) << 4));
    }
}

static void fti__dequantize_q8_0_ref(float *dst, const fti_block_q8_0 *src, size_t nb) {
    size_t b, j;
    for (b = 0; b < nb; b++, dst += FTI_QK) {
        float d = fti_f16_to_f32(src[b].d);
        for (j = 0; j < FTI_QK; j++) dst[j] = (float)src[b].qs[j] * d;
    }
}

static void fti__dequantize_q4_0_ref(float *dst, const fti_block_q4_0 *src, size_t nb) {
    size_t b, j;
    for (b = 0; b < nb; b++, dst += FTI_QK) {
        float d = fti_f16_to_f32(src[b].d);
        for (j = 0; j < FTI_QK / 2; j++) {
            dst[j] = (float)((int)(src[b].qs[j] & 15) - 8) * d;
            dst[j + 16] = (float)((int)(src[b].qs[j] >> 4) - 8) * d;
        }
    }
}

/* Activations for quantized dots: per 32-block a float scale d = max|x|/127, int8 values
 * round(x/d) and their integer sum (Q4_0 needs Σx to undo its +8 offset). */
static void fti__quantize_x_ref(const float *x, size_t nb, int8_t *xq, float *xd, int32_t *xs) {
    size_t b, j;
    for (b = 0; b < nb; b++, x += FTI_QK, xq += FTI_QK) {
        float amax = 0.0f, d, id;
        int32_t s = 0;
        for (j = 0; j < FTI_QK; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        d = amax / 127.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        xd[b] = d;
        for (j = 0; j < FTI_QK; j++) {
            xq[j] = (int8_t)roundf(x[j] * id);
            s += xq[j];
        }
        xs[b] = s;
    }
}

static void fti__gemv_f32_ref(const void *W, size_t row_bytes, size_t rows, const float *x,
                              size_t n, float *y, int acc) {
    size_t r;
    for (r = 0; r < rows; r++) {
        float s = fti__dot_ref((const float *)((const char *)W + r * row_bytes), x, n);
        y[r] = acc ? y[r] + s : s;
    }
}

static void fti__gemv_f16_ref(const void *W, size_t row_bytes, size_t rows, const float *x,
                              size_t n, float *y, int acc) {
    size_t r, i;
    for (r = 0; r < rows; r++) {
        const uint16_t *w = (const uint16_t *)((const char *)W + r * row_bytes);
        float s = 0.0f;
        for (i = 0; i < n; i++) s += fti_f16_to_f32(w[i]) * x[i];
        y[r] = acc ? y[r] + s : s;
    }
}

static void fti__gemv_bf16_ref(const void *W, size_t row_bytes, size_t rows, const float *x,
                               size_t n, float *y, int acc) {
    size_t r, i;
    for (r = 0; r < rows; r++) {
        const uint16_t *w = (const uint16_t *)((const char *)W + r * row_bytes);
        float s = 0.0f;
        for (i = 0; i < n; i++) s += fti_bf16_to_f32(w[i]) * x[i];
        y[r] = acc ? y[r] + s : s;
    }
}

static void fti__gemv_q8_0_ref(const void *W, size_t row_bytes, size_t rows, const int8_t *xq,
                               const float *xd, const int32_t *xs, size_t nb, float *y) {
    size_t r, b, j;
    (void)xs;
    for (r = 0; r < rows; r++) {
        const fti_block_q8_0 *w = (const fti_block_q8_0 *)((const char *)W + r * row_bytes);
        float s = 0.0f;
        for (b = 0; b < nb; b++) {
            int32_t d = 0;
            for (j = 0; j < FTI_QK; j++) d += (int32_t)w[b].qs[j] * xq[b * FTI_QK + j];
            s += fti_f16_to_f32(w[b].d) * xd[b] * (float)d;
        }
        y[r] = s;
    }
}

static void fti__gemv_q4_0_ref(const void *W, size_t row_bytes, size_t rows, const int8_t *xq,
                               const float *xd, const int32_t *xs, size_t nb, float *y) {
    size_t r, b, j;
    for (r = 0; r < rows; r++) {
        const fti_block_q4_0 *w = (const fti_block_q4_0 *)((const char *)W + r * row_bytes);
        float s = 0.0f;
        for (b = 0; b < nb; b++) {
            const int8_t *q = xq + b * FTI_QK;
            int32_t d = 0;
            for (j = 0; j < FTI_QK / 2; j++)
                d += (int32_t)(w[b].qs[j] & 15) * q[j] + (int32_t)(w[b].qs[j] >> 4) * q[j + 16];
            d -= 8 * xs[b];
            s += fti_f16_to_f32(w[b].d) * xd[b] * (float)d;
        }
        y[r] = s;
    }
}

static const fti_kernels fti__kernels_scalar = {
    FTI_ISA_SCALAR,
    "scalar",
    4,
    4,
    256,
    128,
    512,
    fti__ukernel_ref,
    NULL,
    fti__pack_bf16_ref,
    fti__ukernel_bf16_ref,
    fti__gemv_f32_ref,
    fti__gemv_f16_ref,
    fti__gemv_bf16_ref,
    fti__gemv_q8_0_ref,
    fti__gemv_q4_0_ref,
    fti__quantize_x_ref,
    fti__dot_ref,
    fti__axpy_ref,
    fti__scale_ref,
    fti__max_ref,
    fti__exp_sum_ref,
    fti__mul_scaled_ref,
    fti__rmsnorm_bwd_row_ref,
    fti__softmax_bwd_row_ref,
    fti__silu_fwd_ref,
    fti__silu_bwd_ref,
    fti__swiglu_fwd_ref,
    fti__swiglu_bwd_ref,
    fti__adamw_ref,
    fti__f16_to_f32_ref,
    fti__f32_to_f16_ref,
    fti__bf16_to_f32_ref,
    fti__f32_to_bf16_ref,
    fti__quantize_q8_0_ref,
    fti__quantize_q4_0_ref,
    fti__dequantize_q8_0_ref,
    fti__dequantize_q4_0_ref,
};

static const fti_kernels *fti__k(const fti_kernels *k) {
    return k ? k : fti_kernels_get(FTI_ISA_AUTO);
}

/* === kernels: blocked GEMM driver === */
/*
 * Loops (per thread, over its own slice of rows or columns of C):
 *   for jc in N step nc:             B block (kc × nc) packed once per (jc, pc), lives in L2
 *     for pc in K step kc:
 *       pack B[pc.., jc..] into nr-wide panels (zero-padded)
 *       for ic in M step mc:
 *         pack A[ic.., pc..] into mr-high panels (zero-padded)
 *         for ir in mc step mr:      the A panel (mr × kc) stays in L1
 *           for jr in nc step nr:    micro-kernel on the (mr, nr) tile
 * The first pc block stores into C (unless accumulating), later ones add: each element of C is
 * Σ over kc-blocks (in order) of Σ over p (in order), independent of how the threads split C.
 * Edge tiles run the same micro-kernel into a stack tile and copy the valid part out. The one
 * exception to "never split K": the AVX2 table's dW products with K >= 4·M run as two products
 * over fixed halves of K, summed in that order (fti__gemm_k_half): still the same order for any
 * thread count.
 */
typedef struct fti__gemm_ctx {
    const fti_kernels *k;
    fti_pool *pool; /* the panels go in its per-thread scratch (NULL: allocated per call) */
    unsigned flags;
    size_t M, N, K, lda, ldb, ldc;
    const float *A, *B;
    float *C;
    int split_n; /* items are nr-column tiles (else mr-row tiles) */
    int bf16;    /* bf16 panels and micro-kernel (FTI_MM_BF16 with a table that has them) */
    size_t k_half; /* > 0: K split in two parts (fti__gemm_k_half), the second one summed in T */
    float *T;      /* (M,N): the second part's sum, added to C last */
} fti__gemm_ctx;

/* out[p·ld + i] = src[i·lds + p] for i < rows, p < kc: a transposing copy of `rows` source rows
 * into panel columns, in 4×4 blocks with SSE (baseline on x86-64) or NEON where available. */
static void fti__pack_transpose(float *out, size_t ld, const float *src, size_t lds, size_t rows,
                                size_t kc) {
    size_t i = 0, p;
#if defined(FTI__X86) || defined(FTI__NEON)
    for (; i + 4 <= rows; i += 4) {
        const float *s0 = src + i * lds, *s1 = s0 + lds, *s2 = s1 + lds, *s3 = s2 + lds;
        float *o = out + i;
        for (p = 0; p + 4 <= kc; p += 4) {
#if defined(FTI__X86)
            __m128 r0 = _mm_loadu_ps(s0 + p), r1 = _mm_loadu_ps(s1 + p);
            __m128 r2 = _mm_loadu_ps(s2 + p), r3 = _mm_loadu_ps(s3 + p);
            __m128 t0 = _mm_unpacklo_ps(r0, r1), t1 = _mm_unpacklo_ps(r2, r3);
            __m128 t2 = _mm_unpackhi_ps(r0, r1), t3 = _mm_unpackhi_ps(r2, r3);
            _mm_storeu_ps(o + p * ld, _mm_movelh_ps(t0, t1));
            _mm_storeu_ps(o + (p + 1) * ld, _mm_movehl_ps(t1, t0));
            _mm_storeu_ps(o + (p + 2) * ld, _mm_movelh_ps(t2, t3));
            _mm_storeu_ps(o + (p + 3) * ld, _mm_movehl_ps(t3, t2));
#else
            float32x4x2_t t01 = vtrnq_f32(vld1q_f32(s0 + p), vld1q_f32(s1 + p));
            float32x4x2_t t23 = vtrnq_f32(vld1q_f32(s2 + p), vld1q_f32(s3 + p));
            vst1q_f32(o + p * ld, vcombine_f32(vget_low_f32(t01.val[0]), vget_low_f32(t23.val[0])));
            vst1q_f32(o + (p + 1) * ld,
                      vcombine_f32(vget_low_f32(t01.val[1]), vget_low_f32(t23.val[1])));
            vst1q_f32(o + (p + 2) * ld,
                      vcombine_f32(vget_high_f32(t01.val[0]), vget_high_f32(t23.val[0])));
            vst1q_f32(o + (p + 3) * ld,
                      vcombine_f32(vget_high_f32(t01.val[1]), vget_high_f32(t23.val[1])));
#endif
        }
        for (; p < kc; p++) {
            o[p * ld] = s0[p];
            o[p * ld + 1] = s1[p];
            o[p * ld + 2] = s2[p];
            o[p * ld + 3] = s3[p];
        }
    }
#endif
    for (; i < rows; i++)
        for (p = 0; p < kc; p++) out[p * ld + i] = src[i * lds + p];
}

/* dst[0..n) = src[0..n), dst[n..width) = 0: one panel row (n <= width <= 32). Inline SSE/NEON
 * copies: a libc memcpy call per 12 or 32 floats cost more than the copy. */
static void fti__copy_pad(float *dst, const float *src, size_t n, size_t width) {
    size_t i = 0;
#if defined(FTI__X86)
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(dst + i, _mm_loadu_ps(src + i));
#elif defined(FTI__NEON)
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, vld1q_f32(src + i));
#endif
    for (; i < n; i++) dst[i] = src[i];
    for (; i < width; i++) dst[i] = 0.0f;
}

/* dst[0..n) = src[0..n): one whole panel row (n = mr or nr), inlined into the packing loops
 * (a call per 6 or 16 floats cost as much as the copy). */
#if defined(FTI__X86)
static inline __attribute__((always_inline)) void fti__copy_row(float *dst, const float *src,
                                                                size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(dst + i, _mm_loadu_ps(src + i));
    if (i + 2 <= n) {
        _mm_storel_pi((__m64 *)(void *)(dst + i),
                      _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(const void *)(src + i)));
        i += 2;
    }
    if (i < n) dst[i] = src[i];
}
#else
static void fti__copy_row(float *dst, const float *src, size_t n) {
    fti__copy_pad(dst, src, n, n);
}
#endif

/* Prefetch the n floats at src (a source row segment a few rows ahead of the packing). */
#ifndef FTI__PF_ROWS
#define FTI__PF_ROWS 4
#endif
static void fti__prefetch_row(const float *src, size_t n) {
#if defined(FTI__X86) || defined(FTI__NEON)
    const char *p = (const char *)src;
    size_t off, bytes = n * sizeof(float);
    for (off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 3); /* never past */
#else
    (void)src;
    (void)n;
#endif
}

/* Packing reads the source row by row (sequential addresses, so the hardware prefetcher
 * streams them) and scatters into the panels; panels are zero-padded to mr (nr). */
static void fti__pack_a(const fti__gemm_ctx *g, size_t i0, size_t mc, size_t p0, size_t kc,
                        float *out) {
    size_t mr = g->k->mr, ip, i, p;
    if (g->flags & FTI_MM_TRANS_A) { /* A is (K,M): row p holds op(A)[i0.., p] contiguously */
        for (p = 0; p < kc; p++) {
            const float *src = g->A + (p0 + p) * g->lda + i0;
            if (p + FTI__PF_ROWS < kc) fti__prefetch_row(src + FTI__PF_ROWS * g->lda, mc);
            for (ip = 0; ip + mr <= mc; ip += mr)
                fti__copy_row(out + ip * kc + p * mr, src + ip, mr);
            if (ip < mc) fti__copy_pad(out + ip * kc + p * mr, src + ip, mc - ip, mr);
        }
        return;
    }
    for (ip = 0; ip < mc; ip += mr, out += mr * kc) {
        size_t rows = mc - ip < mr ? mc - ip : mr;
        fti__pack_transpose(out, mr, g->A + (i0 + ip) * g->lda + p0, g->lda, rows, kc);
        for (i = rows; i < mr; i++)
            for (p = 0; p < kc; p++) out[p * mr + i] = 0.0f;
    }
}

/* Rows [pa, pb) of the B block [p0, p0 + kc) × [j0, j0 + nc) where B is (K,N) (no TRANS_B):
 * row p holds op(B)[p, j0..]; each row goes into every panel at p·nr. */
static void fti__pack_b_rows(const fti__gemm_ctx *g, size_t j0, size_t nc, size_t p0, size_t kc,
                             size_t pa, size_t pb, float *out) {
    size_t nr = g->k->nr, jp, p;
    for (p = pa; p < pb; p++) {
        const float *src = g->B + (p0 + p) * g->ldb + j0;
        if (p + FTI__PF_ROWS < pb) fti__prefetch_row(src + FTI__PF_ROWS * g->ldb, nc);
        for (jp = 0; jp + nr <= nc; jp += nr) fti__copy_row(out + jp * kc + p * nr, src + jp, nr);
        if (jp < nc) fti__copy_pad(out + jp * kc + p * nr, src + jp, nc - jp, nr);
    }
}

static void fti__pack_b(const fti__gemm_ctx *g, size_t j0, size_t nc, size_t p0, size_t kc,
                        float *out) {
    size_t nr = g->k->nr, jp, j, p;
    if (!(g->flags & FTI_MM_TRANS_B)) {
        fti__pack_b_rows(g, j0, nc, p0, kc, 0, kc, out);
        return;
    }
    for (jp = 0; jp < nc; jp += nr, out += nr * kc) { /* B is (N,K): column j is row j of B */
        size_t cols = nc - jp < nr ? nc - jp : nr;
        fti__pack_transpose(out, nr, g->B + (j0 + jp) * g->ldb + p0, g->ldb, cols, kc);
        for (j = cols; j < nr; j++)
            for (p = 0; p < kc; p++) out[p * nr + j] = 0.0f;
    }
}

/* bf16 panels of op(A) (is_b = 0; panel rows mr) or op(B) (is_b = 1; nr) for [i0, i0+mc) ×
 * [p0, p0+kc): where the source runs along the panel (TRANS_A, or B without TRANS_B) row pairs
 * (p, p+1) go straight into pair words; otherwise through the fp32 panel in tmp. */
static void fti__pack_bf16(const fti__gemm_ctx *g, int is_b, size_t i0, size_t mc, size_t p0,
                           size_t kc, float *tmp, uint32_t *out) {
    const fti_kernels *k = g->k;
    size_t w = is_b ? k->nr : k->mr, kp = (kc + 1) / 2, ip, p2;
    int direct = is_b ? !(g->flags & FTI_MM_TRANS_B) : (g->flags & FTI_MM_TRANS_A) != 0;
    if (direct) {
        const float *src = is_b ? g->B : g->A;
        size_t ld = is_b ? g->ldb : g->lda;
        for (p2 = 0; p2 < kp; p2++) {
            const float *lo = src + (p0 + 2 * p2) * ld + i0;
            const float *hi = 2 * p2 + 1 < kc ? lo + ld : NULL;
            for (ip = 0; ip < mc; ip += w) {
                size_t n = mc - ip < w ? mc - ip : w;
                k->pack_bf16(out + ip * kp + p2 * w, lo + ip, hi ? hi + ip : NULL, n, w);
            }
        }
        return;
    }
    if (is_b)
        fti__pack_b(g, i0, mc, p0, kc, tmp);
    else
        fti__pack_a(g, i0, mc, p0, kc, tmp);
    for (ip = 0; ip < mc; ip += w)
        for (p2 = 0; p2 < kp; p2++) {
            const float *lo = tmp + ip * kc + 2 * p2 * w;
            k->pack_bf16(out + ip * kp + p2 * w, lo, 2 * p2 + 1 < kc ? lo + w : NULL, w, w);
        }
}

/* K is cut into equal blocks of at most k->kc (K = 288 with kc 256 gives 2 × 144, not
 * 256 + 32): the block size depends only on K, so the summation order never depends on threads. */
static size_t fti__gemm_kc(const fti_kernels *k, size_t K) {
    size_t n_blocks = (K + k->kc - 1) / k->kc;
    return n_blocks ? (K + n_blocks - 1) / n_blocks : 1;
}

/* The block size of one product: the table's, except for fp32 products whose A is packed on the
 * AVX-512 tables, which take blocks of up to 1024. Packing A (a transposing copy of mc source
 * rows, kc floats each) stalled on every row's segment: 1.5 KB runs at a 16 KB stride for the
 * dX product (K = 4096 as 11 × 373) kept the row streams short, a page each with 1024, and C's
 * tiles are reloaded K/kc times. Measured on Zen 4, one thread (CPU time): dX 4096×288×4096
 * 95 -> 104 GFLOP/s, square 2048 102 -> 106; the dW product (A read in place, TRANS_A) lost
 * with 1024 (104 -> 90) and keeps the table's. The AVX2 table (6×16 tiles, no in-place kernel)
 * does the same for every product but TRANS_A: on Zen 3 (512 KiB L2) a B block of 1024 × nc no
 * longer fits L2, but streams from L3 fast enough for the 16-wide panels, while C's tiles are
 * reloaded 4 times less often and A's row segments get 4 times longer. Measured on Zen 3, one
 * thread, ratio to OpenBLAS (median of interleaved runs): dX 4096×288×4096 0.93 -> 0.99..1.03,
 * square 2048 0.89 -> 0.93..0.97, fwd 4096×288×288 (one block of 288 instead of 2 × 144)
 * 0.91 -> 1.03; the dW product (TRANS_A, packed with kc 512..1024) lost 1..6% and keeps 256.
 * Depends on K, the flags and the table only. */
static size_t fti__gemm_kc_for(const fti__gemm_ctx *g) {
    size_t n_blocks;
    int in_place = (g->flags & FTI_MM_TRANS_A) && g->k->ukernel_sa;
    int wide = g->k->isa == FTI_ISA_AVX2 ? !(g->flags & FTI_MM_TRANS_A)
                                         : g->k->isa == FTI_ISA_AVX512 && !g->bf16 && !in_place;
    if (!wide || g->k->kc >= 1024)
        return fti__gemm_kc(g->k, g->K);
    n_blocks = (g->K + 1023) / 1024;
    return (g->K + n_blocks - 1) / n_blocks;
}

/* A thread's n columns are cut into equal blocks of at most k->nc, rounded up to whole nr
 * panels (768 with nc 1024 is one block, not 512 + 256): every block repacks the thread's A, so
 * fewer, even blocks pack less (the dW product's K = 4096 made A's repacking cost 10%). The
 * AVX2 table's dW product (TRANS_A, whose A it packs) takes blocks of up to 1024: on Zen 3,
 * one thread, dW 4096×768×288 (768 columns in one block, not 2 × 384) went from 0.85..0.87 to
 * 0.93 of OpenBLAS (median of interleaved runs), the others within noise. Its other products
 * take blocks of up to 2048 where K is one block of at most 512 (the forward products, K = 288):
 * A is repacked 4 times less often, and B's block (2.3 MB at K = 288), past L2, streams from
 * L3 fast enough for the 16-wide panels. On Zen 3 (best of interleaved runs, one thread):
 * fwd 4096×288×4096 +3..4%, fwd 4096×288×768 (one block of 768, not 2 × 384) +2..4%. */
static size_t fti__gemm_nc(const fti__gemm_ctx *g, size_t n) {
    const fti_kernels *k = g->k;
    size_t cap = k->nc, n_blocks, nc;
    if (k->isa == FTI_ISA_AVX2 && (g->flags & FTI_MM_TRANS_A))
        cap = 1024;
    else if (k->isa == FTI_ISA_AVX2 && g->K <= 512) /* one K block (fti__gemm_kc_for) */
        cap = 2048;
    n_blocks = (n + cap - 1) / cap;
    nc = n_blocks ? (n + n_blocks - 1) / n_blocks : k->nr;
    return (nc + k->nr - 1) / k->nr * k->nr;
}

/* Prefetches part t of T of B's source for the block [p0, p0 + kc) × [j0, j0 + nc), so the
 * next block's packing reads from cache: spread over the micro-kernel calls of the current
 * block, the memory latency hides behind the arithmetic. */
static void fti__prefetch_b(const fti__gemm_ctx *g, size_t j0, size_t nc, size_t p0, size_t kc,
                            size_t t, size_t T) {
    if (!(g->flags & FTI_MM_TRANS_B)) { /* rows p of B, nc floats each */
        size_t p = kc * t / T, e = kc * (t + 1) / T;
        for (; p < e; p++) fti__prefetch_row(g->B + (p0 + p) * g->ldb + j0, nc);
    } else { /* rows j of B, kc floats each */
        size_t j = nc * t / T, e = nc * (t + 1) / T;
        for (; j < e; j++) fti__prefetch_row(g->B + (j0 + j) * g->ldb + p0, kc);
    }
}

/* Rows [m0, m1) of C's columns [jc, jc + nc) for the K block [pc, pc + kc), against the packed
 * B block Bp (Bp16); A's blocks are packed into Ap (Ap16) unless read in place. pf (j0, nc, p0,
 * kc) is the part of B's source this thread prefetches for the next block's packing (pf[1] = 0:
 * none). */
static void fti__gemm_rows(const fti__gemm_ctx *g, size_t m0, size_t m1, size_t jc, size_t nc,
                           size_t pc, size_t kc, const float *Bp, const uint32_t *Bp16, float *Ap,
                           uint32_t *Ap16, const size_t pf[4]) {
    const fti_kernels *k = g->k;
    size_t mr = k->mr, nr = k->nr, ic, ir, jr, kp = (kc + 1) / 2;
    size_t n_jr = (nc + nr - 1) / nr, n_ir = (m1 - m0 + mr - 1) / mr;
    /* TRANS_A with an in-place micro-kernel: op(A)'s mr-column strips are read straight from
     * the source rows (contiguous mr floats per k), so A is never packed (it is the dW
     * product's dY, as big as B there) */
    int in_place = (g->flags & FTI_MM_TRANS_A) && k->ukernel_sa && !Ap16;
    int acc = pc > 0 || (g->flags & FTI_MM_ACCUMULATE);
    float tile[32 * 32];
    for (ic = m0; ic < m1; ic += k->mc) {
        size_t mc = m1 - ic < k->mc ? m1 - ic : k->mc;
        if (Ap16)
            fti__pack_bf16(g, 0, ic, mc, pc, kc, Ap, Ap16);
        else if (!in_place)
            fti__pack_a(g, ic, mc, pc, kc, Ap);
        for (ir = 0; ir < mc; ir += mr) {
            const float *a = Ap + ir * kc;
            size_t rows = mc - ir < mr ? mc - ir : mr;
            if (in_place && rows < mr) { /* a partial strip: packed, zero-padded */
                fti__pack_a(g, ic + ir, rows, pc, kc, Ap);
                a = Ap;
            }
            for (jr = 0; jr < nc; jr += nr) {
                const float *b = Bp + jr * kc;
                float *c = g->C + (ic + ir) * g->ldc + jc + jr;
                size_t cols = nc - jr < nr ? nc - jr : nr, i, j;
                if (pf[1])
                    fti__prefetch_b(g, pf[0], pf[1], pf[2], pf[3],
                                    ((ic - m0 + ir) / mr) * n_jr + jr / nr, n_ir * n_jr);
                if (in_place && ir + mr < mc) { /* the next strip, spread over jr */
                    size_t q = jr / nr;
                    size_t p_lo = kc * q / n_jr, p_hi = kc * (q + 1) / n_jr;
                    size_t w = mc - ir - mr < mr ? mc - ir - mr : mr;
                    /* row by row from the index: stepping a pointer would form one
                     * past the end of A after the last row */
                    for (; p_lo < p_hi; p_lo++)
                        fti__prefetch_row(g->A + (pc + p_lo) * g->lda + ic + ir + mr, w);
                }
                if (rows == mr && cols == nr) {
                    if (Ap16)
                        k->ukernel_bf16(kp, Ap16 + ir * kp, Bp16 + jr * kp, c, g->ldc, acc);
                    else if (in_place)
                        k->ukernel_sa(kc, g->A + pc * g->lda + ic + ir, g->lda, b, c, g->ldc,
                                      acc);
                    else
                        k->ukernel(kc, a, b, c, g->ldc, acc);
                    continue;
                }
                if (in_place && rows == mr) /* a full strip against a partial panel */
                    k->ukernel_sa(kc, g->A + pc * g->lda + ic + ir, g->lda, b, tile, nr, 0);
                else if (Ap16)
                    k->ukernel_bf16(kp, Ap16 + ir * kp, Bp16 + jr * kp, tile, nr, 0);
                else
                    k->ukernel(kc, a, b, tile, nr, 0);
                for (i = 0; i < rows; i++)
                    for (j = 0; j < cols; j++)
                        c[i * g->ldc + j] =
                            acc ? c[i * g->ldc + j] + tile[i * nr + j] : tile[i * nr + j];
            }
        }
    }
}

static void fti__gemm_block(const fti__gemm_ctx *g, size_t m0, size_t m1, size_t n0, size_t n1,
                            float *Ap, float *Bp, uint32_t *Ap16, uint32_t *Bp16) {
    size_t jc, pc, kc_blk = fti__gemm_kc_for(g), nc_blk = fti__gemm_nc(g, n1 - n0);
    for (jc = n0; jc < n1; jc += nc_blk) {
        size_t nc = n1 - jc < nc_blk ? n1 - jc : nc_blk;
        for (pc = 0; pc < g->K; pc += kc_blk) {
            size_t kc = g->K - pc < kc_blk ? g->K - pc : kc_blk, pf[4];
            if (Bp16)
                fti__pack_bf16(g, 1, jc, nc, pc, kc, Bp, Bp16);
            else
                fti__pack_b(g, jc, nc, pc, kc, Bp);
            pf[0] = jc;
            pf[1] = pc + kc < g->K ? nc : 0;
            pf[2] = pc + kc;
            pf[3] = g->K - pc - kc < kc_blk ? g->K - pc - kc : kc_blk;
            fti__gemm_rows(g, m0, m1, jc, nc, pc, kc, Bp, Bp16, Ap, Ap16, pf);
        }
    }
}

/* Items [begin, end) (tiles of mr rows or nr columns) of the product g. */
static void fti__gemm_part(const fti__gemm_ctx *g, size_t begin, size_t end, int thread) {
    const fti_kernels *k = g->k;
    size_t m0 = 0, m1 = g->M, n0 = 0, n1 = g->N, kc, nc, mc, kp;
    float *Ap, *Bp;
    uint32_t *Ap16 = NULL, *Bp16 = NULL;
    int oom, scratch = 0;
    if (g->split_n) {
        n0 = begin * k->nr;
        n1 = end * k->nr < g->N ? end * k->nr : g->N;
    } else {
        m0 = begin * k->mr;
        m1 = end * k->mr < g->M ? end * k->mr : g->M;
    }
    if (m0 >= m1 || n0 >= n1) return;
    kc = fti__gemm_kc_for(g);
    kp = (kc + 1) / 2;
    nc = fti__gemm_nc(g, n1 - n0);
    mc = m1 - m0 < k->mc ? m1 - m0 : k->mc;
    mc = (mc + k->mr - 1) / k->mr * k->mr;
    if (g->pool && !g->bf16) { /* one block: A's panel, then B's (both 64-byte multiples) */
        size_t a_bytes = (mc * kc * sizeof(float) + 127) / 64 * 64;
        Ap = (float *)fti_pool_scratch(g->pool, thread, a_bytes + nc * kc * sizeof(float) + 64);
        Bp = Ap ? (float *)(void *)((char *)Ap + a_bytes) : NULL;
        scratch = Ap != NULL;
    }
    if (!scratch) {
        Ap = (float *)fti_aligned_alloc(mc * kc * sizeof(float) + 64, 64);
        Bp = (float *)fti_aligned_alloc(nc * kc * sizeof(float) + 64, 64);
    }
    oom = !Ap || !Bp;
    if (g->bf16) {
        Ap16 = (uint32_t *)fti_aligned_alloc(mc * kp * sizeof(uint32_t) + 64, 64);
        Bp16 = (uint32_t *)fti_aligned_alloc(nc * kp * sizeof(uint32_t) + 64, 64);
        oom = oom || !Ap16 || !Bp16;
    }
    if (oom) { /* out of memory: the reference needs none */
        if (g->bf16)
            fti__matmul_bf16_ref(g->flags, m1 - m0, n1 - n0, g->K,
                                 g->flags & FTI_MM_TRANS_A ? g->A + m0 : g->A + m0 * g->lda,
                                 g->lda, g->flags & FTI_MM_TRANS_B ? g->B + n0 * g->ldb : g->B + n0,
                                 g->ldb, g->C + m0 * g->ldc + n0, g->ldc, kc);
        else
            fti__matmul_ref(g->flags, m1 - m0, n1 - n0, g->K,
                            g->flags & FTI_MM_TRANS_A ? g->A + m0 : g->A + m0 * g->lda, g->lda,
                            g->flags & FTI_MM_TRANS_B ? g->B + n0 * g->ldb : g->B + n0, g->ldb,
                            g->C + m0 * g->ldc + n0, g->ldc);
    } else {
        fti__gemm_block(g, m0, m1, n0, n1, Ap, Bp, Ap16, Bp16);
    }
    if (!scratch) {
        fti_aligned_free(Ap);
        fti_aligned_free(Bp);
    }
    fti_aligned_free(Ap16);
    fti_aligned_free(Bp16);
}

/* Items [begin, end) of a product: row tiles, or with a K split, the row tiles of the first K
 * part (summed into C) then those of the second (summed into T, from 0). */
static void fti__gemm_task(void *ctx, size_t begin, size_t end, int thread) {
    const fti__gemm_ctx *g = (const fti__gemm_ctx *)ctx;
    size_t tiles = (g->M + g->k->mr - 1) / g->k->mr, part;
    if (!g->k_half) {
        fti__gemm_part(g, begin, end, thread);
        return;
    }
    for (part = 0; part < 2; part++) {
        size_t lo = part * tiles, hi = lo + tiles;
        size_t b = begin > lo ? begin : lo, e = end < hi ? end : hi;
        fti__gemm_ctx h = *g;
        if (b >= e) continue;
        h.k_half = 0;
        h.K = g->k_half;
        if (part == 1) { /* A is (K,M), B is (K,N): their rows [k_half, K) */
            h.A = g->A + g->k_half * g->lda;
            h.B = g->B + g->k_half * g->ldb;
            h.K = g->K - g->k_half;
            h.C = g->T;
            h.ldc = g->N;
            h.flags &= ~(unsigned)FTI_MM_ACCUMULATE;
        }
        fti__gemm_part(&h, b - lo, e - lo, thread);
    }
}

/* Rows [begin, end) of C += T (after a K split): one rounded add per element, as the table's axpy
 * with a = 1 computes it (FMA or not, 1·x is exact). */
static void fti__gemm_add_task(void *ctx, size_t begin, size_t end, int thread) {
    const fti__gemm_ctx *g = (const fti__gemm_ctx *)ctx;
    size_t i;
    (void)thread;
    for (i = begin; i < end; i++) g->k->axpy(g->C + i * g->ldc, 1.0f, g->T + i * g->N, g->N);
}

/* Where the AVX2 table splits K of a dW product (TRANS_A, not TRANS_B) whose output is small next
 * to K (K >= 4·M), or 0 (no split). Split by rows, each thread packed all of B for its rows: at two
 * threads, dW 288×288 over K = 4096 packed 1.5 times as much per multiply-add as at one, and ran
 * at 0.8 of OpenBLAS. With the split, parts [0, k_half) and [k_half, K) are independent products
 * over all rows (each packs half of A and B: at two threads, one part each), C gets the first and
 * then T's sum of the second: each element is (C + Σ part 0) + Σ part 1, blocks in order, for any
 * thread count. Depends on the table, the flags and the shape only. */
static size_t fti__gemm_k_half(const fti_kernels *k, unsigned flags, size_t M, size_t K) {
    if (k->isa != FTI_ISA_AVX2 || (flags & (FTI_MM_TRANS_A | FTI_MM_TRANS_B)) != FTI_MM_TRANS_A)
        return 0;
    if (K < 4 * M || K < 4 * k->kc) return 0;
    return K / 2;
}

typedef struct fti__gemv_ctx {
    const fti_kernels *k;
    fti_dtype wtype;
    const void *W;
    size_t row_bytes, n_in, T, n_out, ldx, ldy;
    const float *X;
    float *Y;
    int acc;
    /* quantized activations, (T, nb) */
    const int8_t *xq;
    const float *xd;
    const int32_t *xs;
} fti__gemv_ctx;

/* Rows [begin, end) of W against all T rows of X. With T > 1 (prefill) the rows go in slices of
 * about 32 KiB of weights, so each slice is read from memory once and reused from L1/L2 by
 * every token; each output is still one row kernel call, so the split does not change results. */
static void fti__gemv_task(void *ctx, size_t begin, size_t end, int thread) {
    const fti__gemv_ctx *g = (const fti__gemv_ctx *)ctx;
    size_t t, nb = g->n_in / FTI_QK, r0, slice;
    (void)thread;
    slice = g->T == 1 ? end - begin : (32768 + g->row_bytes - 1) / g->row_bytes;
    for (r0 = begin; r0 < end; r0 += slice) {
        size_t rows = end - r0 < slice ? end - r0 : slice;
        const char *w = (const char *)g->W + r0 * g->row_bytes;
        for (t = 0; t < g->T; t++) {
            float *y = g->Y + t * g->ldy + r0;
            const float *x = g->X ? g->X + t * g->ldx : NULL;
            switch (g->wtype) {
            case FTI_DTYPE_F32: g->k->gemv_f32(w, g->row_bytes, rows, x, g->n_in, y, g->acc); break;
            case FTI_DTYPE_F16: g->k->gemv_f16(w, g->row_bytes, rows, x, g->n_in, y, g->acc); break;
            case FTI_DTYPE_BF16:
                g->k->gemv_bf16(w, g->row_bytes, rows, x, g->n_in, y, g->acc);
                break;
            case FTI_DTYPE_Q8_0:
                g->k->gemv_q8_0(w, g->row_bytes, rows, g->xq + t * nb * FTI_QK, g->xd + t * nb,
                                g->xs + t * nb, nb, y);
                break;
            case FTI_DTYPE_Q4_0:
                g->k->gemv_q4_0(w, g->row_bytes, rows, g->xq + t * nb * FTI_QK, g->xd + t * nb,
                                g->xs + t * nb, nb, y);
                break;
            }
        }
    }
}

/* y(1,N) = a(1,K)·B(K,N) for one row (decode attention's p·V): per 64-column chunk, a stack
 * accumulator gets a[p]·B[p, chunk] for p in order (the table's axpy), then is stored or added.
 * Chunks are split over threads; each element's order depends only on K. */
typedef struct fti__vecmat_ctx {
    const fti_kernels *k;
    const float *a, *B;
    size_t a_stride, ldb, K, N;
    float *C;
    int acc;
} fti__vecmat_ctx;

static void fti__vecmat_task(void *ctx, size_t begin, size_t end, int thread) {
    const fti__vecmat_ctx *v = (const fti__vecmat_ctx *)ctx;
    float t[64];
    size_t c, p, j;
    (void)thread;
    for (c = begin; c < end; c++) {
        size_t j0 = c * 64, n = v->N - j0 < 64 ? v->N - j0 : 64;
        memset(t, 0, sizeof t);
        for (p = 0; p < v->K; p++) v->k->axpy(t, v->a[p * v->a_stride], v->B + p * v->ldb + j0, n);
        for (j = 0; j < n; j++) v->C[j0 + j] = v->acc ? v->C[j0 + j] + t[j] : t[j];
    }
}

/* Rows per GEMV work item so one item reads at least ~16 KiB of weights (and stays a multiple
 * of 16 rows, which keeps multi-row kernels on their fast path). */
static size_t fti__gemv_grain(size_t row_bytes) {
    size_t g = row_bytes ? (16384 + row_bytes - 1) / row_bytes : 1;
    return (g + 15) / 16 * 16;
}

#if defined(FTI__X86) && !defined(FTI_NO_AVX512)
/* The CPU has AVX512_BF16 (asked once; the tables of a compiler without it have no bf16 kernel). */
static int fti__cpu_bf16(void) {
    static int known = 0; /* 0 not yet asked, 1 no, 2 yes */
    int v = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (!v) {
        v = (fti_cpu_features() & FTI_CPU_AVX512BF16) ? 2 : 1;
        __atomic_store_n(&known, v, __ATOMIC_RELAXED);
    }
    return v == 2;
}
#endif

/* Whether table k computes FTI_MM_BF16 products in bf16 (its AVX-512 variant needs the CPU's
 * AVX512_BF16 on top of the table's own features). */
static int fti__bf16_ok(const fti_kernels *k) {
    if (!k->ukernel_bf16 || !k->pack_bf16) return 0;
#if defined(FTI__X86) && !defined(FTI_NO_AVX512)
    if (k->isa == FTI_ISA_AVX512) return fti__cpu_bf16();
#endif
    return 1;
}

int fti_matmul_has_bf16(const fti_kernels *k) { return fti__bf16_ok(fti__k(k)); }

void fti_matmul(const fti_kernels *k, fti_pool *pool, unsigned flags, size_t M, size_t N, size_t K,
                const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc) {
    fti__gemm_ctx g;
    size_t tiles_m, tiles_n, items, grain, work;
    int bf16;
    k = fti__k(k);
    if (M == 0 || N == 0) return;
    if (K == 0) {
        size_t i;
        if (!(flags & FTI_MM_ACCUMULATE))
            for (i = 0; i < M; i++) memset(C + i * ldc, 0, N * sizeof(float));
        return;
    }
    bf16 = (flags & FTI_MM_BF16) && fti__bf16_ok(k);
    if (M <= 4 && !bf16 && (flags & FTI_MM_TRANS_B) && !(flags & FTI_MM_TRANS_A)) {
        /* GEMVs: y(N) = B(N,K)·a(K) for each of the M rows of A, one dot per output, split
         * over outputs (B read once in L2-sized slices); a packed 12-row tile would be mostly
         * padding at this M */
        fti__gemv_ctx v;
        memset(&v, 0, sizeof v);
        v.k = k;
        v.wtype = FTI_DTYPE_F32;
        v.W = B;
        v.row_bytes = ldb * sizeof(float);
        v.n_in = K;
        v.T = M;
        v.n_out = N;
        v.ldx = lda;
        v.ldy = ldc;
        v.X = A;
        v.Y = C;
        v.acc = (flags & FTI_MM_ACCUMULATE) != 0;
        fti_pool_for(pool, N, fti__gemv_grain(K * sizeof(float)), fti__gemv_task, &v);
        return;
    }
    if (M == 1 && !bf16 && !(flags & FTI_MM_TRANS_B)) {
        /* a row vector times a matrix: no packing, no 1-of-mr-rows micro-tiles */
        fti__vecmat_ctx v;
        v.k = k;
        v.a = A;
        v.a_stride = (flags & FTI_MM_TRANS_A) ? lda : 1;
        v.B = B;
        v.ldb = ldb;
        v.K = K;
        v.N = N;
        v.C = C;
        v.acc = (flags & FTI_MM_ACCUMULATE) != 0;
        fti_pool_for(pool, (N + 63) / 64, 1 + (size_t)(1u << 16) / (64 * K), fti__vecmat_task, &v);
        return;
    }
    memset(&g, 0, sizeof g);
    g.k = k;
    g.pool = pool;
    g.flags = flags;
    g.M = M;
    g.N = N;
    g.K = K;
    g.A = A;
    g.lda = lda;
    g.B = B;
    g.ldb = ldb;
    g.C = C;
    g.ldc = ldc;
    g.bf16 = bf16;
    tiles_m = (M + k->mr - 1) / k->mr;
    tiles_n = (N + k->nr - 1) / k->nr;
    /* split the dimension with more tiles (relative to its block size); never K (but see
     * fti__gemm_k_half: two fixed K halves, each split by rows). Splitting by rows packs all
     * of B in every thread, by columns reads all of A in every thread: columns when N > 2·M,
     * except where A is read in place (TRANS_A, the dW product) and N fits one column block:
     * there rows up to N = 4·M. (dW 288×768 over K = 4096 at two threads: by columns, each A
     * strip read in place served 12 panels and B's rows were half-rows of X; by rows a strip
     * serves all 24 panels and B's rows are read whole. A B shared by the threads, packed once
     * between barriers, was slower: each core reads half of every block from the other core's
     * L2.) */
    g.split_n = tiles_n * k->nr > tiles_m * k->mr * 2 && tiles_n >= 2;
    if (g.split_n && (flags & FTI_MM_TRANS_A) && k->ukernel_sa && !bf16 && N <= k->nc &&
        tiles_n * k->nr <= tiles_m * k->mr * 4)
        g.split_n = 0;
    items = g.split_n ? tiles_n : tiles_m;
    work = (g.split_n ? k->nr * M : k->mr * N) * K; /* multiply-adds per item */
    g.k_half = bf16 ? 0 : fti__gemm_k_half(k, flags, M, K);
    if (g.k_half) {
        g.T = (float *)fti_aligned_alloc(M * N * sizeof(float), 64);
        if (!g.T) g.k_half = 0; /* out of memory: no split (other sums, as the reference's) */
    }
    if (g.k_half) {
        g.split_n = 0;
        items = 2 * tiles_m;
        work = k->mr * N * (K / 2);
    }
    grain = work ? (size_t)1 + (size_t)(1u << 20) / work : 1;
    fti_pool_for(pool, items, grain, fti__gemm_task, &g);
    if (g.k_half) {
        fti_pool_for(pool, M, 1 + 16384 / N, fti__gemm_add_task, &g);
        fti_aligned_free(g.T);
    }
}

fti_result fti_matmul_w(const fti_kernels *k, fti_pool *pool, fti_dtype wtype, const void *W,
                        const float *X, float *Y, size_t T, size_t n_out, size_t n_in) {
    fti__gemv_ctx v;
    size_t row_bytes = fti_dtype_row_bytes(wtype, n_in), nb = n_in / FTI_QK, t;
    void *mem = NULL;
    enum { STACK_BLOCKS = 128 };
    int8_t sq[STACK_BLOCKS * FTI_QK];
    float sd[STACK_BLOCKS];
    int32_t ss[STACK_BLOCKS];
    k = fti__k(k);
    if (fti_dtype_block_elems(wtype) == 0 || (row_bytes == 0 && n_in != 0)) return FTI_ERR_INVALID;
    if (T == 0 || n_out == 0) return FTI_OK;
    if (n_in == 0) {
        memset(Y, 0, T * n_out * sizeof(float));
        return FTI_OK;
    }
    if (wtype == FTI_DTYPE_F32 && T > 4) {
        fti_matmul(k, pool, FTI_MM_TRANS_B, T, n_out, n_in, X, n_in, (const float *)W, n_in, Y,
                   n_out);
        return FTI_OK;
    }
    /* several rows: the multi-row tiles of 02_kernels_quant.c (this path if out of memory) */
    if ((wtype == FTI_DTYPE_Q8_0 || wtype == FTI_DTYPE_Q4_0) && T > 1 &&
        fti_matmul_q(k, pool, wtype, W, X, n_in, Y, n_out, T, n_out, n_in, NULL, 0) == FTI_OK)
        return FTI_OK;
    memset(&v, 0, sizeof v);
    v.k = k;
    v.wtype = wtype;
    v.W = W;
    v.row_bytes = row_bytes;
    v.n_in = n_in;
    v.T = T;
    v.n_out = n_out;
    v.ldx = n_in;
    v.ldy = n_out;
    v.X = X;
    v.Y = Y;
    if (wtype == FTI_DTYPE_Q8_0 || wtype == FTI_DTYPE_Q4_0) {
        size_t n_blocks;
        int8_t *xq = sq;
        float *xd = sd;
        int32_t *xs = ss;
        if (!fti_size_mul(T, nb, &n_blocks)) return FTI_ERR_INVALID;
        if (n_blocks > STACK_BLOCKS) {
            size_t bytes;
            if (!fti_size_mul(n_blocks, FTI_QK + 8, &bytes)) return FTI_ERR_INVALID;
            mem = fti_malloc(bytes);
            if (!mem) { /* no memory: the reference quantizes block by block on the stack */
                for (t = 0; t < T; t++) {
                    size_t r, b;
                    for (r = 0; r < n_out; r++) {
                        const char *w = (const char *)W + r * row_bytes;
                        float s = 0.0f;
                        for (b = 0; b < nb; b++) {
                            float y1;
                            fti__quantize_x_ref(X + t * n_in + b * FTI_QK, 1, sq, sd, ss);
                            if (wtype == FTI_DTYPE_Q8_0)
                                fti__gemv_q8_0_ref(w + b * sizeof(fti_block_q8_0), 0, 1, sq, sd, ss,
                                                   1, &y1);
                            else
                                fti__gemv_q4_0_ref(w + b * sizeof(fti_block_q4_0), 0, 1, sq, sd, ss,
                                                   1, &y1);
                            s += y1;
                        }
                        Y[t * n_out + r] = s;
                    }
                }
                return FTI_OK;
            }
            xd = (float *)mem;
            xs = (int32_t *)(xd + n_blocks);
            xq = (int8_t *)(xs + n_blocks);
        }
        for (t = 0; t < T; t++)
            k->quantize_x(X + t * n_in, nb, xq + t * nb * FTI_QK, xd + t * nb, xs + t * nb);
        v.xq = xq;
        v.xd = xd;
        v.xs = xs;
    }
    fti_pool_for(pool, n_out, fti__gemv_grain(row_bytes), fti__gemv_task, &v);
    fti_free(mem);
    return FTI_OK;
}

/* === kernels: vector op wrappers === */

float fti_dot(const fti_kernels *k, const float *x, const float *y, size_t n) {
    return fti__k(k)->dot(x, y, n);
}

void fti_axpy(const fti_kernels *k, float *y, float a, const float *x, size_t n) {
    fti__k(k)->axpy(y, a, x, n);
}

void fti_scale(const fti_kernels *k, float *x, float a, size_t n) { fti__k(k)->scale(x, a, n); }

void fti_rmsnorm_fwd(const fti_kernels *k, float *out, float *rstd, const float *x, const float *w,
                     size_t R, size_t C, float eps) {
    size_t r;
    k = fti__k(k);
    for (r = 0; r < R; r++) {
        const float *xr = x + r * C;
        float ss = C ? k->dot(xr, xr, C) / (float)C : 0.0f;
        float rs = 1.0f / sqrtf(ss + eps);
        if (rstd) rstd[r] = rs;
        k->mul_scaled(out + r * C, xr, w, rs, C);
    }
}

void fti_rmsnorm_bwd(const fti_kernels *k, float *dx, float *dw, const float *dout, const float *x,
                     const float *w, const float *rstd, size_t R, size_t C) {
    size_t r;
    k = fti__k(k);
    for (r = 0; r < R; r++)
        k->rmsnorm_bwd_row(dx + r * C, w ? dw : NULL, dout + r * C, x + r * C, w, rstd[r], C);
}

/* p = softmax(x) of one row; returns log Σ exp(x - max) + max (the log-partition). */
static double fti__softmax_row(const fti_kernels *k, float *p, const float *x, size_t n) {
    float mx = k->max(x, n), s;
    size_t i;
    if (n == 0) return 0.0;
    if (mx == -INFINITY) {
        for (i = 0; i < n; i++) p[i] = 1.0f / (float)n;
        return -INFINITY;
    }
    s = k->exp_sum(p, x, n, mx);
    k->scale(p, 1.0f / s, n);
    return log((double)s) + mx;
}

void fti_softmax_fwd(const fti_kernels *k, float *p, const float *x, size_t R, size_t C) {
    size_t r;
    k = fti__k(k);
    for (r = 0; r < R; r++) fti__softmax_row(k, p + r * C, x + r * C, C);
}

void fti_softmax_bwd(const fti_kernels *k, float *dx, const float *p, const float *dp, size_t R,
                     size_t C) {
    size_t r;
    k = fti__k(k);
    for (r = 0; r < R; r++) k->softmax_bwd_row(dx + r * C, p + r * C, dp + r * C, C);
}

void fti_silu_fwd(const fti_kernels *k, float *y, const float *x, size_t n) {
    fti__k(k)->silu_fwd(y, x, n);
}

void fti_silu_bwd(const fti_kernels *k, float *dx, const float *x, const float *dy, size_t n) {
    fti__k(k)->silu_bwd(dx, x, dy, n);
}

void fti_swiglu_fwd(const fti_kernels *k, float *h, const float *g, const float *u, size_t n) {
    fti__k(k)->swiglu_fwd(h, g, u, n);
}

void fti_swiglu_bwd(const fti_kernels *k, float *dg, float *du, const float *g, const float *u,
                    const float *dh, size_t n) {
    fti__k(k)->swiglu_bwd(dg, du, g, u, dh, n);
}

/* RoPE is the reference in every table: the cost is in the sines and cosines, computed once per
 * (token, pair) in double and shared by all heads. */
static void fti__rope(float *x, size_t T, size_t H, size_t D, size_t row_stride, size_t pos0,
                      const int32_t *pos, float base, double sign) {
    size_t t, h, i, half = D / 2;
    if (row_stride == 0) row_stride = H * D;
    for (t = 0; t < T; t++) {
        double p = pos ? (double)pos[t] : (double)(pos0 + t);
        float *row = x + t * row_stride;
        for (i = 0; i < half; i++) {
            double ang = p * pow((double)base, -2.0 * (double)i / (double)D);
            float c = (float)cos(ang), s = (float)(sign * sin(ang));
            for (h = 0; h < H; h++) {
                float *v = row + h * D + 2 * i, x0 = v[0], x1 = v[1];
                v[0] = x0 * c - x1 * s;
                v[1] = x0 * s + x1 * c;
            }
        }
    }
}

void fti_rope_fwd(const fti_kernels *k, float *x, size_t T, size_t H, size_t D, size_t row_stride,
                  size_t pos0, const int32_t *pos, float base) {
    (void)k;
    fti__rope(x, T, H, D, row_stride, pos0, pos, base, 1.0);
}

void fti_rope_bwd(const fti_kernels *k, float *dx, size_t T, size_t H, size_t D, size_t row_stride,
                  size_t pos0, const int32_t *pos, float base) {
    (void)k;
    fti__rope(dx, T, H, D, row_stride, pos0, pos, base, -1.0);
}

size_t fti_xent_fwd(const fti_kernels *k, float *loss, float *probs, const float *logits,
                    const int32_t *targets, size_t R, size_t V) {
    size_t r, n_valid = 0;
    k = fti__k(k);
    for (r = 0; r < R; r++) {
        int32_t tg = targets[r];
        double lz;
        float xt = (tg >= 0 && (size_t)tg < V) ? logits[r * V + (size_t)tg] : 0.0f;
        lz = fti__softmax_row(k, probs + r * V, logits + r * V, V);
        if (tg >= 0 && (size_t)tg < V) {
            n_valid++;
            if (loss) loss[r] = (float)(lz - (double)xt);
        } else if (loss) {
            loss[r] = 0.0f;
        }
    }
    return n_valid;
}

void fti_xent_bwd(const fti_kernels *k, float *dlogits, const float *probs, const int32_t *targets,
                  float dloss, size_t R, size_t V) {
    size_t r, i;
    k = fti__k(k);
    for (r = 0; r < R; r++) {
        int32_t tg = targets[r];
        float *d = dlogits + r * V;
        if (tg < 0 || (size_t)tg >= V) {
            memset(d, 0, V * sizeof(float));
            continue;
        }
        if (d != probs + r * V)
            for (i = 0; i < V; i++) d[i] = probs[r * V + i];
        d[tg] -= 1.0f;
        k->scale(d, dloss, V);
    }
}

void fti_adamw(const fti_kernels *k, float *param, const float *grad, float *m, float *v, size_t n,
               const fti_adamw_hparams *hp, int decay) {
    float c[8];
    double t = hp->step > 0 ? (double)hp->step : 1.0;
    c[0] = hp->lr;
    c[1] = hp->beta1;
    c[2] = hp->beta2;
    c[3] = hp->eps;
    c[4] = decay ? 1.0f - hp->lr * hp->weight_decay : 1.0f;
    c[5] = hp->grad_scale != 0.0f ? hp->grad_scale : 1.0f;
    c[6] = (float)(1.0 / (1.0 - pow((double)hp->beta1, t)));
    c[7] = (float)(1.0 / sqrt(1.0 - pow((double)hp->beta2, t)));
    fti__k(k)->adamw(param, grad, m, v, n, c);
}

void fti_f16_to_f32_row(const fti_kernels *k, float *dst, const uint16_t *src, size_t n) {
    fti__k(k)->f16_to_f32(dst, src, n);
}

void fti_f32_to_f16_row(const fti_kernels *k, uint16_t *dst, const float *src, size_t n) {
    fti__k(k)->f32_to_f16(dst, src, n);
}

void fti_bf16_to_f32_row(const fti_kernels *k, float *dst, const uint16_t *src, size_t n) {
    fti__k(k)->bf16_to_f32(dst, src, n);
}

void fti_f32_to_bf16_row(const fti_kernels *k, uint16_t *dst, const float *src, size_t n) {
    fti__k(k)->f32_to_bf16(dst, src, n);
}

fti_result fti_quantize_row(const fti_kernels *k, fti_dtype t, void *dst, const float *src,
                            size_t n) {
    if (fti_dtype_block_elems(t) == 0 || (fti_dtype_row_bytes(t, n) == 0 && n != 0))
        return FTI_ERR_INVALID;
    k = fti__k(k);
    switch (t) {
    case FTI_DTYPE_F32: memmove(dst, src, n * sizeof(float)); break;
    case FTI_DTYPE_F16: k->f32_to_f16((uint16_t *)dst, src, n); break;
    case FTI_DTYPE_BF16: k->f32_to_bf16((uint16_t *)dst, src, n); break;
    case FTI_DTYPE_Q8_0: k->quantize_q8_0((fti_block_q8_0 *)dst, src, n / FTI_QK); break;
    case FTI_DTYPE_Q4_0: k->quantize_q4_0((fti_block_q4_0 *)dst, src, n / FTI_QK); break;
    }
    return FTI_OK;
}

fti_result fti_dequantize_row(const fti_kernels *k, fti_dtype t, float *dst, const void *src,
                              size_t n) {
    if (fti_dtype_block_elems(t) == 0 || (fti_dtype_row_bytes(t, n) == 0 && n != 0))
        return FTI_ERR_INVALID;
    k = fti__k(k);
    switch (t) {
    case FTI_DTYPE_F32: memmove(dst, src, n * sizeof(float)); break;
    case FTI_DTYPE_F16: k->f16_to_f32(dst, (const uint16_t *)src, n); break;
    case FTI_DTYPE_BF16: k->bf16_to_f32(dst, (const uint16_t *)src, n); break;
    case FTI_DTYPE_Q8_0: k->dequantize_q8_0(dst, (const fti_block_q8_0 *)src, n / FTI_QK); break;
    case FTI_DTYPE_Q4_0: k->dequantize_q4_0(dst, (const fti_block_q4_0 *)src, n / FTI_QK); break;
    }
    return FTI_OK;
}
