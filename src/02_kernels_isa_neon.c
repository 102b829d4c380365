/* === kernels: aarch64 NEON variants === */
/*
 * NEON is part of the aarch64 baseline, so this table needs no detection. It covers the GEMM
 * micro-kernel (8×12, fused multiply-add by lane), the f32/Q8_0/Q4_0 GEMV rows and activation
 * quantization, BLAS-1, the exp-based ops (softmax, SiLU, SwiGLU), softmax backward, AdamW and
 * fp16 rows and the weight quantizers (byte for byte the references); the RMSNorm backward row and
 * bf16 rows use the references (a small share of a training step).
 */
#include "02_kernels.h"

#if defined(FTI__NEON)
#include <arm_neon.h>

/* GEMM micro-kernel 8×12: 24 q-register accumulators; A's 8 values per step in two registers,
 * used by lane. */
#define FTI__UKN_ROW(i, av, lane)                                                                  \
    do {                                                                                           \
        c##i##_0 = vfmaq_laneq_f32(c##i##_0, b0, av, lane);                                        \
        c##i##_1 = vfmaq_laneq_f32(c##i##_1, b1, av, lane);                                        \
        c##i##_2 = vfmaq_laneq_f32(c##i##_2, b2, av, lane);                                        \
    } while (0)
#define FTI__UKN_STORE(i)                                                                          \
    do {                                                                                           \
        float *ci = c + (i)*ldc;                                                                   \
        if (acc) {                                                                                 \
            c##i##_0 = vaddq_f32(vld1q_f32(ci), c##i##_0);                                         \
            c##i##_1 = vaddq_f32(vld1q_f32(ci + 4), c##i##_1);                                     \
            c##i##_2 = vaddq_f32(vld1q_f32(ci + 8), c##i##_2);                                     \
        }                                                                                          \
        vst1q_f32(ci, c##i##_0);                                                                   \
        vst1q_f32(ci + 4, c##i##_1);                                                               \
        vst1q_f32(ci + 8, c##i##_2);                                                               \
    } while (0)

static void fti__ukernel_neon(size_t kc, const float *a, const float *b, float *c, size_t ldc,
                              int acc) {
    float32x4_t z = vdupq_n_f32(0.0f);
    float32x4_t c0_0 = z, c0_1 = z, c0_2 = z, c1_0 = z, c1_1 = z, c1_2 = z, c2_0 = z, c2_1 = z,
                c2_2 = z, c3_0 = z, c3_1 = z, c3_2 = z, c4_0 = z, c4_1 = z, c4_2 = z, c5_0 = z,
                c5_1 = z, c5_2 = z, c6_0 = z, c6_1 = z, c6_2 = z, c7_0 = z, c7_1 = z, c7_2 = z;
    size_t p;
    for (p = 0; p < kc; p++, a += 8, b += 12) {
        float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        FTI__UKN_ROW(0, a0, 0);
        FTI__UKN_ROW(1, a0, 1);
        FTI__UKN_ROW(2, a0, 2);
        FTI__UKN_ROW(3, a0, 3);
        FTI__UKN_ROW(4, a1, 0);
        FTI__UKN_ROW(5, a1, 1);
        FTI__UKN_ROW(6, a1, 2);
        FTI__UKN_ROW(7, a1, 3);
    }
    FTI__UKN_STORE(0);
    FTI__UKN_STORE(1);
    FTI__UKN_STORE(2);
    FTI__UKN_STORE(3);
    FTI__UKN_STORE(4);
    FTI__UKN_STORE(5);
    FTI__UKN_STORE(6);
    FTI__UKN_STORE(7);
}

static float fti__dot_neon(const float *x, const float *y, size_t n) {
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    float s;
    for (; i + 16 <= n; i += 16) {
        a0 = vfmaq_f32(a0, vld1q_f32(x + i), vld1q_f32(y + i));
        a1 = vfmaq_f32(a1, vld1q_f32(x + i + 4), vld1q_f32(y + i + 4));
        a2 = vfmaq_f32(a2, vld1q_f32(x + i + 8), vld1q_f32(y + i + 8));
        a3 = vfmaq_f32(a3, vld1q_f32(x + i + 12), vld1q_f32(y + i + 12));
    }
    for (; i + 4 <= n; i += 4) a0 = vfmaq_f32(a0, vld1q_f32(x + i), vld1q_f32(y + i));
    s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) s += x[i] * y[i];
    return s;
}

static void fti__axpy_neon(float *y, float a, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++) y[i] += a * x[i];
}

static void fti__scale_neon(float *x, float a, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), a));
    for (; i < n; i++) x[i] *= a;
}

static void fti__gemv_f32_neon(const void *W, size_t row_bytes, size_t rows, const float *x,
                               size_t n, float *y, int acc) {
    size_t r;
    for (r = 0; r < rows; r++) {
        float s = fti__dot_neon((const float *)((const char *)W + r * row_bytes), x, n);
        y[r] = acc ? y[r] + s : s;
    }
}

/* 32 int8 products of one block summed into 4 int32 lanes (pairs of products fit int16). */
static int32x4_t fti__dot32_neon(int32x4_t acc, int8x16_t w0, int8x16_t w1, int8x16_t x0,
                                 int8x16_t x1) {
    int16x8_t p0 = vmull_s8(vget_low_s8(w0), vget_low_s8(x0));
    int16x8_t p1 = vmull_s8(vget_low_s8(w1), vget_low_s8(x1));
    p0 = vmlal_s8(p0, vget_high_s8(w0), vget_high_s8(x0));
    p1 = vmlal_s8(p1, vget_high_s8(w1), vget_high_s8(x1));
    return vpadalq_s16(vpadalq_s16(acc, p0), p1);
}

/* wd·xd of block b of four rows (one fp16 conversion; a row alone passes itself four times). */
static float32x4_t fti__q_scales4_neon(uint16_t d0, uint16_t d1, uint16_t d2, uint16_t d3,
                                       float xdb) {
    uint16_t h[4];
    h[0] = d0, h[1] = d1, h[2] = d2, h[3] = d3;
    return vmulq_n_f32(vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h))), xdb);
}

/* The quantized GEMVs below take four rows at a time, rows i, i+q, i+2q, i+3q (four sequential
 * streams sharing x); a row left over takes the same steps (its scale in lane 0), so each row's
 * result is the same bits wherever it falls. BODY(w, acc, lane) adds one row's block b. */
#define FTI__GEMV4_NEON(BTYPE, BODY)                                                               \
    do {                                                                                           \
        size_t r_, b, q4_ = rows / 4, st_ = q4_ * row_bytes;                                       \
        for (r_ = 0; r_ < q4_; r_++) {                                                             \
            const BTYPE *w0 = (const BTYPE *)((const char *)W + r_ * row_bytes);                   \
            const BTYPE *w1 = (const BTYPE *)((const char *)w0 + st_);                             \
            const BTYPE *w2 = (const BTYPE *)((const char *)w1 + st_);                             \
            const BTYPE *w3 = (const BTYPE *)((const char *)w2 + st_);                             \
            float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;                         \
            for (b = 0; b < nb; b++) {                                                             \
                const int8_t *xb = xq + b * FTI_QK;                                                \
                float32x4_t s4 = fti__q_scales4_neon(w0[b].d, w1[b].d, w2[b].d, w3[b].d, xd[b]);   \
                BODY(w0, a0, 0);                                                                   \
                BODY(w1, a1, 1);                                                                   \
                BODY(w2, a2, 2);                                                                   \
                BODY(w3, a3, 3);                                                                   \
            }                                                                                      \
            y[r_] = vaddvq_f32(a0);                                                                \
            y[r_ + q4_] = vaddvq_f32(a1);                                                          \
            y[r_ + 2 * q4_] = vaddvq_f32(a2);                                                      \
            y[r_ + 3 * q4_] = vaddvq_f32(a3);                                                      \
        }                                                                                          \
        for (r_ = 4 * q4_; r_ < rows; r_++) {                                                      \
            const BTYPE *w0 = (const BTYPE *)((const char *)W + r_ * row_bytes);                   \
            float32x4_t a0 = vdupq_n_f32(0.0f);                                                    \
            for (b = 0; b < nb; b++) {                                                             \
                const int8_t *xb = xq + b * FTI_QK;                                                \
                float32x4_t s4 = fti__q_scales4_neon(w0[b].d, w0[b].d, w0[b].d, w0[b].d, xd[b]);   \
                BODY(w0, a0, 0);                                                                   \
            }                                                                                      \
            y[r_] = vaddvq_f32(a0);                                                                \
        }                                                                                          \
    } while (0)

#define FTI__Q8_NEON_BODY(w, acc, lane)                                                            \
    acc = vfmaq_laneq_f32(acc,                                                                     \
                          vcvtq_f32_s32(fti__dot32_neon(vdupq_n_s32(0), vld1q_s8((w)[b].qs),       \
                                                        vld1q_s8((w)[b].qs + 16), vld1q_s8(xb),    \
                                                        vld1q_s8(xb + 16))),                       \
                          s4, lane)

static void fti__gemv_q8_0_neon(const void *W, size_t row_bytes, size_t rows, const int8_t *xq,
                                const float *xd, const int32_t *xs, size_t nb, float *y) {
    (void)xs;
    FTI__GEMV4_NEON(fti_block_q8_0, FTI__Q8_NEON_BODY);
}

/* Q4_0: low nibbles times x[0..15], high times x[16..31], from -2·Σx in each of the 4 lanes (the
 * block's -8·Σx). */
#define FTI__Q4_NEON_BODY(w, acc, lane)                                                            \
    do {                                                                                           \
        uint8x16_t q_ = vld1q_u8((w)[b].qs);                                                       \
        int32x4_t d_ = fti__dot32_neon(vdupq_n_s32(-2 * xs[b]),                                    \
                                       vreinterpretq_s8_u8(vandq_u8(q_, vdupq_n_u8(15))),          \
                                       vreinterpretq_s8_u8(vshrq_n_u8(q_, 4)), vld1q_s8(xb),       \
                                       vld1q_s8(xb + 16));                                         \
        acc = vfmaq_laneq_f32(acc, vcvtq_f32_s32(d_), s4, lane);                                   \
    } while (0)

static void fti__gemv_q4_0_neon(const void *W, size_t row_bytes, size_t rows, const int8_t *xq,
                                const float *xd, const int32_t *xs, size_t nb, float *y) {
    FTI__GEMV4_NEON(fti_block_q4_0, FTI__Q4_NEON_BODY);
}

static float fti__max_neon(const float *x, size_t n) {
    float32x4_t m = vdupq_n_f32(-INFINITY);
    size_t i = 0;
    float r;
    for (; i + 4 <= n; i += 4) m = vmaxq_f32(m, vld1q_f32(x + i));
    r = vmaxvq_f32(m);
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}

/* e^x as on x86: n = round(x·log2 e), Taylor degree 6 on r = x - n·ln 2, 2^n in the exponent;
 * below -87.33 gives 0 (also -inf), above 88.72 gives +inf, NaN stays NaN. */
static float32x4_t fti__exp_neon(float32x4_t x) {
    uint32x4_t under = vcltq_f32(x, vdupq_n_f32(-87.33654f));
    uint32x4_t over = vcgtq_f32(x, vdupq_n_f32(88.72283f));
    float32x4_t xc = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.33654f)), vdupq_n_f32(88.72283f));
    float32x4_t n = vrndnq_f32(vmulq_f32(xc, vdupq_n_f32(1.44269504f))), r, p;
    int32x4_t e;
    uint32x4_t nan = vmvnq_u32(vceqq_f32(x, x));
    n = vminq_f32(n, vdupq_n_f32(127.0f));
    r = vfmsq_f32(xc, n, vdupq_n_f32(0.693145751953125f));
    r = vfmsq_f32(r, n, vdupq_n_f32(1.428606765330187e-06f));
    p = vdupq_n_f32(1.0f / 720.0f);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    p = vmulq_f32(p, vreinterpretq_f32_s32(e));
    p = vbslq_f32(under, vdupq_n_f32(0.0f), p);
    p = vbslq_f32(over, vdupq_n_f32(INFINITY), p);
    return vbslq_f32(nan, x, p);
}

static float32x4_t fti__sigmoid_neon(float32x4_t x) {
    float32x4_t one = vdupq_n_f32(1.0f);
    return vdivq_f32(one, vaddq_f32(one, fti__exp_neon(vnegq_f32(x))));
}

static float fti__exp_sum_neon(float *y, const float *x, size_t n, float sub) {
    float32x4_t s = vdupq_n_f32(0.0f), vs = vdupq_n_f32(sub);
    size_t i = 0;
    float r;
    for (; i + 4 <= n; i += 4) {
        float32x4_t e = fti__exp_neon(vsubq_f32(vld1q_f32(x + i), vs));
        vst1q_f32(y + i, e);
        s = vaddq_f32(s, e);
    }
    r = vaddvq_f32(s);
    for (; i < n; i++) {
        y[i] = expf(x[i] - sub);
        r += y[i];
    }
    return r;
}

static void fti__mul_scaled_neon(float *out, const float *x, const float *w, float s, size_t n) {
    size_t i = 0;
    if (w)
        for (; i + 4 <= n; i += 4)
            vst1q_f32(out + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), s), vld1q_f32(w + i)));
    else
        for (; i + 4 <= n; i += 4) vst1q_f32(out + i, vmulq_n_f32(vld1q_f32(x + i), s));
    fti__mul_scaled_ref(out + i, x + i, w ? w + i : NULL, s, n - i);
}

static void fti__silu_fwd_neon(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        vst1q_f32(y + i, vmulq_f32(v, fti__sigmoid_neon(v)));
    }
    fti__silu_fwd_ref(y + i, x + i, n - i);
}

static void fti__silu_bwd_neon(float *dx, const float *x, const float *dy, size_t n) {
    float32x4_t one = vdupq_n_f32(1.0f);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i), s = fti__sigmoid_neon(v);
        float32x4_t t = vfmaq_f32(one, v, vsubq_f32(one, s));
        vst1q_f32(dx + i, vmulq_f32(vmulq_f32(vld1q_f32(dy + i), s), t));
    }
    fti__silu_bwd_ref(dx + i, x + i, dy + i, n - i);
}

static void fti__swiglu_fwd_neon(float *h, const float *g, const float *u, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(g + i);
        vst1q_f32(h + i, vmulq_f32(vmulq_f32(v, fti__sigmoid_neon(v)), vld1q_f32(u + i)));
    }
    fti__swiglu_fwd_ref(h + i, g + i, u + i, n - i);
}

static void fti__swiglu_bwd_neon(float *dg, float *du, const float *g, const float *u,
                                 const float *dh, size_t n) {
    float32x4_t one = vdupq_n_f32(1.0f);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(g + i), s = fti__sigmoid_neon(v), d = vld1q_f32(dh + i);
        float32x4_t t = vfmaq_f32(one, v, vsubq_f32(one, s)), uu = vld1q_f32(u + i);
        vst1q_f32(du + i, vmulq_f32(vmulq_f32(d, v), s));
        vst1q_f32(dg + i, vmulq_f32(vmulq_f32(vmulq_f32(d, uu), s), t));
    }
    fti__swiglu_bwd_ref(dg + i, du + i, g + i, u + i, dh + i, n - i);
}

static void fti__f16_to_f32_neon(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(dst + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(src + i))));
    fti__f16_to_f32_ref(dst + i, src + i, n - i);
}

static void fti__f32_to_f16_neon(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1_u16(dst + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + i))));
    fti__f32_to_f16_ref(dst + i, src + i, n - i);
}

static void fti__quantize_x_neon(const float *x, size_t nb, int8_t *xq, float *xd, int32_t *xs) {
    size_t b;
    for (b = 0; b < nb; b++, x += FTI_QK, xq += FTI_QK) {
        float32x4_t v[8], m;
        int32x4_t q[8], sum;
        int16x8_t h0, h1, h2, h3;
        float amax, d, id;
        int j;
        for (j = 0; j < 8; j++) v[j] = vld1q_f32(x + 4 * j);
        m = vmaxq_f32(vmaxq_f32(vmaxq_f32(vabsq_f32(v[0]), vabsq_f32(v[1])),
                                vmaxq_f32(vabsq_f32(v[2]), vabsq_f32(v[3]))),
                      vmaxq_f32(vmaxq_f32(vabsq_f32(v[4]), vabsq_f32(v[5])),
                                vmaxq_f32(vabsq_f32(v[6]), vabsq_f32(v[7]))));
        amax = vmaxvq_f32(m);
        d = amax / 127.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        xd[b] = d;
        for (j = 0; j < 8; j++) q[j] = vcvtnq_s32_f32(vmulq_n_f32(v[j], id));
        sum = vaddq_s32(vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3])),
                        vaddq_s32(vaddq_s32(q[4], q[5]), vaddq_s32(q[6], q[7])));
        xs[b] = vaddvq_s32(sum);
        h0 = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
        h1 = vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]));
        h2 = vcombine_s16(vmovn_s32(q[4]), vmovn_s32(q[5]));
        h3 = vcombine_s16(vmovn_s32(q[6]), vmovn_s32(q[7]));
        vst1q_s8(xq, vcombine_s8(vmovn_s16(h0), vmovn_s16(h1)));
        vst1q_s8(xq + 16, vcombine_s8(vmovn_s16(h2), vmovn_s16(h3)));
    }
}

static void fti__softmax_bwd_row_neon(float *dx, const float *p, const float *dp, size_t n) {
    float s = fti__dot_neon(p, dp, n);
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(dx + i,
                  vmulq_f32(vld1q_f32(p + i), vsubq_f32(vld1q_f32(dp + i), vdupq_n_f32(s))));
    for (; i < n; i++) dx[i] = p[i] * (dp[i] - s);
}

static void fti__adamw_neon(float *p, const float *g, float *m, float *v, size_t n,
                            const float c[8]) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t gi = vmulq_n_f32(vld1q_f32(g + i), c[5]);
        float32x4_t mi =
            vaddq_f32(vmulq_n_f32(vld1q_f32(m + i), c[1]), vmulq_n_f32(gi, 1.0f - c[1]));
        float32x4_t vi = vaddq_f32(vmulq_n_f32(vld1q_f32(v + i), c[2]),
                                   vmulq_f32(vmulq_n_f32(gi, 1.0f - c[2]), gi));
        float32x4_t den = vaddq_f32(vmulq_n_f32(vsqrtq_f32(vi), c[7]), vdupq_n_f32(c[3]));
        float32x4_t upd = vdivq_f32(vmulq_n_f32(vmulq_n_f32(mi, c[6]), c[0]), den);
        vst1q_f32(m + i, mi);
        vst1q_f32(v + i, vi);
        vst1q_f32(p + i, vsubq_f32(vmulq_n_f32(vld1q_f32(p + i), c[4]), upd));
    }
    fti__adamw_ref(p + i, g + i, m + i, v + i, n - i, c);
}

/* --- weight quantizers, byte for byte the references' (fti__q8_level, fti__q4_level) ----------
 * Q8_0: FCVTAS rounds half away from zero (roundf) and turns NaN into 0. Q4_0 truncates v + 8.5
 * (v from min/max, so no compiler fuses the product and the sum). */

/* |v| with NaN lanes 0 (the references' maximum skips NaN). */
static float32x4_t fti__abs_nan0_neon(float32x4_t v) {
    return vreinterpretq_f32_u32(
        vandq_u32(vreinterpretq_u32_f32(vabsq_f32(v)), vceqq_f32(v, v)));
}

static int32x4_t fti__q8_levels_neon(float32x4_t v) {
    int32x4_t q = vcvtaq_s32_f32(v);
    return vminq_s32(vmaxq_s32(q, vdupq_n_s32(-127)), vdupq_n_s32(127));
}

static int32x4_t fti__q4_levels_neon(float32x4_t v) {
    int32x4_t q;
    v = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), vceqq_f32(v, v))); /* NaN: 0 */
    v = vminq_f32(vmaxq_f32(v, vdupq_n_f32(-9.0f)), vdupq_n_f32(9.0f));
    q = vcvtq_s32_f32(vaddq_f32(v, vdupq_n_f32(8.5f)));
    return vminq_s32(vmaxq_s32(q, vdupq_n_s32(0)), vdupq_n_s32(15));
}

/* v[0..8) of a block and their |v| with NaN 0; returns the largest magnitude. */
static float fti__block_amax_neon(const float *src, float32x4_t v[8], float32x4_t a[8]) {
    float32x4_t m;
    int j;
    for (j = 0; j < 8; j++) {
        v[j] = vld1q_f32(src + 4 * j);
        a[j] = fti__abs_nan0_neon(v[j]);
    }
    m = vmaxq_f32(vmaxq_f32(vmaxq_f32(a[0], a[1]), vmaxq_f32(a[2], a[3])),
                  vmaxq_f32(vmaxq_f32(a[4], a[5]), vmaxq_f32(a[6], a[7])));
    return vmaxvq_f32(m);
}

static void fti__quantize_q8_0_neon(fti_block_q8_0 *dst, const float *src, size_t nb) {
    size_t b;
    for (b = 0; b < nb; b++, src += FTI_QK) {
        float32x4_t v[8], a[8];
        int32x4_t q[8];
        int16x8_t h[4];
        float amax = fti__block_amax_neon(src, v, a), d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        int j;
        dst[b].d = fti_f32_to_f16(d);
        for (j = 0; j < 8; j++) q[j] = fti__q8_levels_neon(vmulq_n_f32(v[j], id));
        for (j = 0; j < 4; j++) h[j] = vcombine_s16(vmovn_s32(q[2 * j]), vmovn_s32(q[2 * j + 1]));
        vst1q_s8(dst[b].qs, vcombine_s8(vmovn_s16(h[0]), vmovn_s16(h[1])));
        vst1q_s8(dst[b].qs + 16, vcombine_s8(vmovn_s16(h[2]), vmovn_s16(h[3])));
    }
}

static void fti__quantize_q4_0_neon(fti_block_q4_0 *dst, const float *src, size_t nb) {
    size_t b;
    for (b = 0; b < nb; b++, src += FTI_QK) {
        float32x4_t v[8], a[8];
        int32x4_t w[4];
        float amax = fti__block_amax_neon(src, v, a), mx = 0.0f, d, id;
        int j;
        if (amax > 0.0f) { /* the first element of largest magnitude */
            float32x4_t va = vdupq_n_f32(amax);
            uint32x4_t first = vdupq_n_u32(32);
            uint32_t base[4] = {0, 1, 2, 3};
            uint32x4_t idx = vld1q_u32(base);
            for (j = 0; j < 8; j++) {
                first = vminq_u32(first, vbslq_u32(vceqq_f32(a[j], va), idx, vdupq_n_u32(32)));
                idx = vaddq_u32(idx, vdupq_n_u32(4));
            }
            mx = src[vminvq_u32(first)];
        }
        d = mx / -8.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = fti_f32_to_f16(d);
        /* byte j: element j (low nibble) and j + 16 (high) */
        for (j = 0; j < 4; j++)
            w[j] = vorrq_s32(fti__q4_levels_neon(vmulq_n_f32(v[j], id)),
                             vshlq_n_s32(fti__q4_levels_neon(vmulq_n_f32(v[j + 4], id)), 4));
        vst1q_u8(dst[b].qs,
                 vreinterpretq_u8_s8(vcombine_s8(
                     vmovn_s16(vcombine_s16(vmovn_s32(w[0]), vmovn_s32(w[1]))),
                     vmovn_s16(vcombine_s16(vmovn_s32(w[2]), vmovn_s32(w[3]))))));
    }
}

static void fti__dequantize_q8_0_neon(float *dst, const fti_block_q8_0 *src, size_t nb) {
    size_t b;
    int j;
    for (b = 0; b < nb; b++, dst += FTI_QK) {
        float d = fti_f16_to_f32(src[b].d);
        for (j = 0; j < 2; j++) {
            int8x16_t q = vld1q_s8(src[b].qs + 16 * j);
            int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_s8(vget_high_s8(q));
            float *o = dst + 16 * j;
            vst1q_f32(o, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), d));
            vst1q_f32(o + 4, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo))), d));
            vst1q_f32(o + 8, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), d));
            vst1q_f32(o + 12, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi))), d));
        }
    }
}

static void fti__dequantize_q4_0_neon(float *dst, const fti_block_q4_0 *src, size_t nb) {
    size_t b;
    int j;
    for (b = 0; b < nb; b++, dst += FTI_QK) {
        float d = fti_f16_to_f32(src[b].d);
        uint8x16_t q = vld1q_u8(src[b].qs);
        int8x16_t nib[2];
        nib[0] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(15))), vdupq_n_s8(8));
        nib[1] = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), vdupq_n_s8(8));
        for (j = 0; j < 2; j++) {
            int16x8_t lo = vmovl_s8(vget_low_s8(nib[j])), hi = vmovl_s8(vget_high_s8(nib[j]));
            float *o = dst + 16 * j;
            vst1q_f32(o, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), d));
            vst1q_f32(o + 4, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo))), d));
            vst1q_f32(o + 8, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), d));
            vst1q_f32(o + 12, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi))), d));
        }
    }
}

/* --- dot product extension (ARMv8.2 SDOT: Graviton 2+, Apple M1+, Cortex-A76+) ------------- */
/* Detected at run time from the ELF auxiliary vector (Linux); the functions carry their own
 * target attribute, so the file builds for plain ARMv8-A. */
#if defined(__linux__) && !defined(FTI_NO_DOTPROD)
#include <sys/auxv.h>
#define FTI__DOTPROD_OK 1
#if defined(__clang__)
#define FTI__DOTPROD __attribute__((target("dotprod")))
#else
#define FTI__DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

static unsigned fti__cpu_features_neon(void) {
    unsigned long hw = getauxval(AT_HWCAP);
    return FTI_CPU_NEON | ((hw & (1ul << 20)) ? FTI_CPU_DOTPROD : 0u); /* HWCAP_ASIMDDP */
}

#define FTI__Q8_SDOT_BODY(w, acc, lane)                                                            \
    acc = vfmaq_laneq_f32(                                                                         \
        acc,                                                                                       \
        vcvtq_f32_s32(vdotq_s32(vdotq_s32(vdupq_n_s32(0), vld1q_s8((w)[b].qs), vld1q_s8(xb)),      \
                                vld1q_s8((w)[b].qs + 16), vld1q_s8(xb + 16))),                     \
        s4, lane)

FTI__DOTPROD static void fti__gemv_q8_0_sdot(const void *W, size_t row_bytes, size_t rows,
                                             const int8_t *xq, const float *xd, const int32_t *xs,
                                             size_t nb, float *y) {
    (void)xs;
    FTI__GEMV4_NEON(fti_block_q8_0, FTI__Q8_SDOT_BODY);
}

/* Q4_0 with sdot: from -2·Σx in each of the 4 lanes (the block's -8·Σx). */
#define FTI__Q4_SDOT_BODY(w, acc, lane)                                                            \
    do {                                                                                           \
        uint8x16_t q_ = vld1q_u8((w)[b].qs);                                                       \
        int32x4_t d_ = vdotq_s32(vdupq_n_s32(-2 * xs[b]),                                          \
                                 vreinterpretq_s8_u8(vandq_u8(q_, vdupq_n_u8(15))), vld1q_s8(xb)); \
        d_ = vdotq_s32(d_, vreinterpretq_s8_u8(vshrq_n_u8(q_, 4)), vld1q_s8(xb + 16));             \
        acc = vfmaq_laneq_f32(acc, vcvtq_f32_s32(d_), s4, lane);                                   \
    } while (0)

FTI__DOTPROD static void fti__gemv_q4_0_sdot(const void *W, size_t row_bytes, size_t rows,
                                             const int8_t *xq, const float *xd, const int32_t *xs,
                                             size_t nb, float *y) {
    FTI__GEMV4_NEON(fti_block_q4_0, FTI__Q4_SDOT_BODY);
}
#else
static unsigned fti__cpu_features_neon(void) { return FTI_CPU_NEON; }
#endif

static const fti_kernels fti__kernels_neon_table = {
    FTI_ISA_NEON,
    "neon",
    8,
    12,
    256,
    128,
    480,
    fti__ukernel_neon,
    NULL,
    NULL,
    NULL,
    fti__gemv_f32_neon,
    fti__gemv_f16_ref,
    fti__gemv_bf16_ref,
    fti__gemv_q8_0_neon,
    fti__gemv_q4_0_neon,
    fti__quantize_x_neon,
    fti__dot_neon,
    fti__axpy_neon,
    fti__scale_neon,
    fti__max_neon,
    fti__exp_sum_neon,
    fti__mul_scaled_neon,
    fti__rmsnorm_bwd_row_ref,
    fti__softmax_bwd_row_neon,
    fti__silu_fwd_neon,
    fti__silu_bwd_neon,
    fti__swiglu_fwd_neon,
    fti__swiglu_bwd_neon,
    fti__adamw_neon,
    fti__f16_to_f32_neon,
    fti__f32_to_f16_neon,
    fti__bf16_to_f32_ref,
    fti__f32_to_bf16_ref,
    fti__quantize_q8_0_neon,
    fti__quantize_q4_0_neon,
    fti__dequantize_q8_0_neon,
    fti__dequantize_q4_0_neon,
};

#if defined(FTI__DOTPROD_OK)
/* The same table with SDOT for the quantized dots. */
static const fti_kernels fti__kernels_neon_dot_table = {
    FTI_ISA_NEON,
    "neon",
    8,
    12,
    256,
    128,
    480,
    fti__ukernel_neon,
    NULL,
    NULL,
    NULL,
    fti__gemv_f32_neon,
    fti__gemv_f16_ref,
    fti__gemv_bf16_ref,
    fti__gemv_q8_0_sdot,
    fti__gemv_q4_0_sdot,
    fti__quantize_x_neon,
    fti__dot_neon,
    fti__axpy_neon,
    fti__scale_neon,
    fti__max_neon,
    fti__exp_sum_neon,
    fti__mul_scaled_neon,
    fti__rmsnorm_bwd_row_ref,
    fti__softmax_bwd_row_neon,
    fti__silu_fwd_neon,
    fti__silu_bwd_neon,
    fti__swiglu_fwd_neon,
    fti__swiglu_bwd_neon,
    fti__adamw_neon,
    fti__f16_to_f32_neon,
    fti__f32_to_f16_neon,
    fti__bf16_to_f32_ref,
    fti__f32_to_bf16_ref,
    fti__quantize_q8_0_neon,
    fti__quantize_q4_0_neon,
    fti__dequantize_q8_0_neon,
    fti__dequantize_q4_0_neon,
};

#endif

static const fti_kernels *fti__kernels_neon(void) {
#if defined(FTI__DOTPROD_OK)
    if (fti__cpu_features_neon() & FTI_CPU_DOTPROD) return &fti__kernels_neon_dot_table;
#endif
    return &fti__kernels_neon_table;
}
#endif /* FTI__NEON */
