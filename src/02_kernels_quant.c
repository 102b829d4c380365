/* === kernels: quantized multi-row matmul (prefill, batched decoding) === */
/*
 * Y(M,N) = X(M,K) · Wᵀ for W in Q8_0 or Q4_0 rows (ggml blocks, as mapped from a GGUF file).
 * X is quantized once per call to int8 32-blocks (the "qact" buffer: per block an f32 scale
 * d = max|x|/127, 32 int8 values and their sum, the same numbers fti_matmul_w uses). The work
 * is cut into tiles of 4 activation rows × 4 weight rows: each weight block is loaded (and, for
 * Q4_0, unpacked) once per tile and dotted against the 4 activation rows in registers, and a
 * slice of about 16 KiB of weight rows is run against every activation row before the next
 * slice, so weights come from memory once per call whatever M is.
 *
 * Each output is (Σ over 32-blocks, in order, of wd·xd·int_dot) accumulated in the table's
 * lanes, then reduced; tiles that run past M or N repeat their last row (the extra results are
 * dropped), so an output never depends on its neighbours, the tile it lands in or the thread
 * that computes it: bit-identical for any pool size and any M. The variants:
 *   scalar   fti__qtile_*_ref, the specification (same formula as the GEMV reference)
 *   AVX2     8-row panels instead of tiles (see "AVX2 panels" below): per row and block one
 *            exact integer dot, maddubs on |w| and x·sign(w) (Q8_0), on the nibbles and x
 *            minus 8·Σx (Q4_0). The AVX-512 table without VNNI uses the AVX2 4×4 tiles:
 *            maddubs per (row, activation row, block) into 8 lanes, summed at the end.
 *   AVX-512  with VNNI: vpdpbusd, two blocks per zmm. Q8_0 dots (x+128)·w starting from
 *            -128·Σw; Q4_0 dots the unsigned nibbles with x starting from -Σx per lane.
 *            AVX-512 without VNNI uses the AVX2 tiles.
 *   NEON     SDOT when the CPU has it, else vmull/vpadal; Q4_0 nibbles recentred to -8..7.
 * The variant is chosen from the kernel table the caller passes (fti_kernels_get / FTI_ISA).
 */
#include "02_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One tile: out[m*4 + r] = row r of the weights · activation row m, over nb blocks. */
typedef void (*fti__qtile_fn)(const char *const *w, const int8_t *const *xq,
                              const float *const *xd, const int32_t *const *xs, size_t nb,
                              float *out);

/* The multi-row products' shared state: the matrices (sharing one input) and the quantized X. */
typedef struct fti__qm_ctx {
    const fti_kernels *k;
    const fti_qmat *mats;
    size_t n_mats, M, nb;
    const int8_t *xq;
    const float *xd;
    const int32_t *xs;
} fti__qm_ctx;

/* Row m of a product's output. */
#define FTI__QMAT_ROW(a, m) ((a)->Yrows ? (a)->Yrows[m] : (a)->Y + (m) * (a)->ldy)

/* Panel form (AVX-512 VNNI): FTI__QP_BLOCK bytes per 32-block of 16 rows; chunks of at most
 * FTI__QP_MAXNB blocks when packed on the stack. */
/* FTI__CV4_BLOCK, FTI__CV8_BLOCK: the compact forms' (AVX-512 VNNI decode, Q4_0 and Q8_0,
 * "compact groups" below). */
enum { FTI__QP_MAXNB = 64, FTI__QP_BLOCK = 576, FTI__CV4_BLOCK = 288, FTI__CV8_BLOCK = 544 };

/* Full unrolling of the 4-wide tile loops, so the accumulators live in registers. */
#if defined(__clang__)
#define FTI__UNROLL4 _Pragma("unroll 4")
#elif defined(__GNUC__) && __GNUC__ >= 8
#define FTI__UNROLL4 _Pragma("GCC unroll 4")
#else
#define FTI__UNROLL4
#endif

/* --- scalar reference ------------------------------------------------------------------------ */

static void fti__qtile_q8_0_ref(const char *const *w, const int8_t *const *xq,
                                const float *const *xd, const int32_t *const *xs, size_t nb,
                                float *out) {
    size_t m, r, b, j;
    (void)xs;
    for (m = 0; m < 4; m++)
        for (r = 0; r < 4; r++) {
            const fti_block_q8_0 *wb = (const fti_block_q8_0 *)w[r];
            float s = 0.0f;
            for (b = 0; b < nb; b++) {
                int32_t d = 0;
                for (j = 0; j < FTI_QK; j++) d += (int32_t)wb[b].qs[j] * xq[m][b * FTI_QK + j];
                s += fti_f16_to_f32(wb[b].d) * xd[m][b] * (float)d;
            }
            out[m * 4 + r] = s;
        }
}

static void fti__qtile_q4_0_ref(const char *const *w, const int8_t *const *xq,
                                const float *const *xd, const int32_t *const *xs, size_t nb,
                                float *out) {
    size_t m, r, b, j;
    for (m = 0; m < 4; m++)
        for (r = 0; r < 4; r++) {
            const fti_block_q4_0 *wb = (const fti_block_q4_0 *)w[r];
            float s = 0.0f;
            for (b = 0; b < nb; b++) {
                const int8_t *q = xq[m] + b * FTI_QK;
                int32_t d = 0;
                for (j = 0; j < FTI_QK / 2; j++)
                    d += (int32_t)(wb[b].qs[j] & 15) * q[j] +
                         (int32_t)(wb[b].qs[j] >> 4) * q[j + 16];
                d -= 8 * xs[m][b];
                s += fti_f16_to_f32(wb[b].d) * xd[m][b] * (float)d;
            }
            out[m * 4 + r] = s;
        }
}

/* --- x86-64 ---------------------------------------------------------------------------------- */
#if defined(FTI__X86)
FTI__X86_WARN_PUSH /* g++ false positives in its AVX-512 headers (00_base.h) */

/* AVX2 tiles, run by the AVX-512 table without VNNI (whose GEMV is AVX2's; the AVX2 table
 * runs the 8-row panels below): the GEMV's steps (fti__gemv_q8_0_rows4_avx2,
 * fti__gemv_q4_0_rows4_avx2 in 02_kernels_isa_x86.c: pairs of blocks, the 4 weight rows' dots
 * reduced together, even and odd blocks in separate lanes) for each of the 4 activation rows,
 * so a tile's outputs are the decode GEMV's bits; the fp16 scales (and Q4_0's nibbles) are
 * loaded once per pair for the 4 activation rows. two = 0: block b alone (the last of an odd
 * nb), zeros in the second half. */
/* A Q8_0 block's int32 dots with x as 8 lanes: |w| (unsigned) times x with w's sign, exact for
 * every w including -128 (|x| times w with x's sign wraps it: vpsignb gives -128 for -(-128)),
 * x being the activations' own quantization (-127..127). The same integers as the GEMV's. */
FTI__AVX2 static inline __attribute__((always_inline)) __m256i
fti__q8_dot_avx2(const int8_t *wq, __m256i x, __m256i ones) {
    __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)wq);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)),
                             ones);
}

FTI__AVX2 static inline __attribute__((always_inline)) void
fti__qtile_q8_0_pair_avx2(const fti_block_q8_0 *const *w, const int8_t *const *xq,
                          const float *const *xd, size_t b, int two, __m256 *acc) {
    const __m256i ones = _mm256_set1_epi16(1), z = _mm256_setzero_si256();
    const fti_block_q8_0 *w0 = w[0], *w1 = w[1], *w2 = w[2], *w3 = w[3];
    __m256 d8 = fti__d8_avx2(FTI__D4_AVX2(w, b), two ? FTI__D4_AVX2(w, b + 1) : 0);
    size_t m;
    /* per activation row the GEMV's integers (fti__q8_dot_avx2), w read again from L1 */
    FTI__UNROLL4
    for (m = 0; m < 4; m++) {
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(xq[m] + b * FTI_QK)), x1;
        __m256i p0, p1, p2, p3;
        __m256 sc = _mm256_mul_ps(d8, fti__pair_ps_avx2(xd[m][b], two ? xd[m][b + 1] : 0.0f));
        if (two) {
            x1 = _mm256_loadu_si256((const __m256i *)(xq[m] + b * FTI_QK + FTI_QK));
            p0 = fti__fold2_epi32_avx2(fti__q8_dot_avx2(w0[b].qs, x0, ones),
                                       fti__q8_dot_avx2(w0[b + 1].qs, x1, ones));
            p1 = fti__fold2_epi32_avx2(fti__q8_dot_avx2(w1[b].qs, x0, ones),
                                       fti__q8_dot_avx2(w1[b + 1].qs, x1, ones));
            p2 = fti__fold2_epi32_avx2(fti__q8_dot_avx2(w2[b].qs, x0, ones),
                                       fti__q8_dot_avx2(w2[b + 1].qs, x1, ones));
            p3 = fti__fold2_epi32_avx2(fti__q8_dot_avx2(w3[b].qs, x0, ones),
                                       fti__q8_dot_avx2(w3[b + 1].qs, x1, ones));
        } else {
            p0 = fti__fold2_epi32_avx2(fti__q8_dot_avx2(w0[b].qs, x0, ones), z);
            p1 = fti__fold2_epi32_avx2(fti__q8_dot_avx2(w1[b].qs, x0, ones), z);
            p2 = fti__fold2_epi32_avx2(fti__q8_dot_avx2(w2[b].qs, x0, ones), z);
            p3 = fti__fold2_epi32_avx2(fti__q8_dot_avx2(w3[b].qs, x0, ones), z);
        }
        acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(fti__hsum4x2_epi32_avx2(p0, p1, p2, p3)), sc,
                                 acc[m]);
    }
}

FTI__AVX2 static inline __attribute__((always_inline)) void
fti__qtile_q4_0_pair_avx2(const fti_block_q4_0 *const *w, const int8_t *const *xq,
                          const float *const *xd, const int32_t *const *xs, size_t b, int two,
                          __m256 *acc) {
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256 d8 = fti__d8_avx2(FTI__D4_AVX2(w, b), two ? FTI__D4_AVX2(w, b + 1) : 0);
    __m256i lo[4], hi[4], p[4];
    size_t m;
    int r;
    for (r = 0; r < 4; r++) {
        if (two)
            FTI__Q4_NIB2_AVX2(w[r] + b, lo[r], hi[r]);
        else
            FTI__Q4_NIB1_AVX2(w[r] + b, lo[r], hi[r]);
    }
    FTI__UNROLL4
    for (m = 0; m < 4; m++) {
        __m256i xv[4];
        __m256 sc;
        fti__q4_xpair_avx2(xq[m], xd[m], xs[m], b, two, xv);
        sc = _mm256_mul_ps(d8, _mm256_castsi256_ps(xv[3]));
        for (r = 0; r < 4; r++) p[r] = FTI__Q4_DOT2_AVX2(lo[r], hi[r], xv[0], xv[1]);
        acc[m] = _mm256_fmadd_ps(
            _mm256_cvtepi32_ps(
                _mm256_sub_epi32(fti__hsum4x2_epi16_avx2(p[0], p[1], p[2], p[3]), xv[2])),
            sc, acc[m]);
    }
}

/* out[m*4 + r] = lanes r and r + 4 of acc[m] added (odd blocks' sum to even blocks'). */
FTI__AVX2 static void fti__qtile_store_avx2(const __m256 *acc, float *out) {
    size_t m;
    for (m = 0; m < 4; m++)
        _mm_storeu_ps(out + 4 * m, _mm_add_ps(_mm256_castps256_ps128(acc[m]),
                                              _mm256_extractf128_ps(acc[m], 1)));
}

FTI__AVX2 static void fti__qtile_q8_0_avx2(const char *const *w, const int8_t *const *xq,
                                           const float *const *xd, const int32_t *const *xs,
                                           size_t nb, float *out) {
    const fti_block_q8_0 *wr[4];
    __m256 acc[4];
    size_t b;
    int r;
    (void)xs;
    for (r = 0; r < 4; r++) {
        wr[r] = (const fti_block_q8_0 *)(const void *)w[r];
        acc[r] = _mm256_setzero_ps();
    }
    for (b = 0; b + 2 <= nb; b += 2) fti__qtile_q8_0_pair_avx2(wr, xq, xd, b, 1, acc);
    if (b < nb) fti__qtile_q8_0_pair_avx2(wr, xq, xd, b, 0, acc);
    fti__qtile_store_avx2(acc, out);
}

FTI__AVX2 static void fti__qtile_q4_0_avx2(const char *const *w, const int8_t *const *xq,
                                           const float *const *xd, const int32_t *const *xs,
                                           size_t nb, float *out) {
    const fti_block_q4_0 *wr[4];
    __m256 acc[4];
    size_t b;
    int r;
    for (r = 0; r < 4; r++) {
        wr[r] = (const fti_block_q4_0 *)(const void *)w[r];
        acc[r] = _mm256_setzero_ps();
    }
    for (b = 0; b + 2 <= nb; b += 2) fti__qtile_q4_0_pair_avx2(wr, xq, xd, xs, b, 1, acc);
    if (b < nb) fti__qtile_q4_0_pair_avx2(wr, xq, xd, xs, b, 0, acc);
    fti__qtile_store_avx2(acc, out);
}

/* --- AVX2 panels: 8 weight rows interleaved, one exact integer dot per block and row --------- */
/* The AVX2 table's multi-row products (prefill, batched decoding). A group of 8 weight rows is
 * repacked per chunk of blocks on the stack so that ymm j of block b holds, in lane i, weights
 * 4j..4j+3 of row i (Q4_0: the nibbles 0..15; Q8_0: the int8 values), followed by the 8 rows'
 * scales as f32 (FTI__P8_BLOCK bytes per block; an 8×8 dword transpose of the rows' blocks).
 * Then for each activation row, per block: x's 4-byte groups broadcast, one maddubs per group
 * against the panel (Q8_0 through the sign trick: |w| times x·sign(w)); Q4_0 adds the 8 int16
 * results in int16 (|each| <= 2·15·127, 8 of them fit) and widens once, Q8_0 widens each (two
 * could reach 2·2·128·127); lane i then holds row i's exact integer dot (Q4_0 minus 8·Σx), and
 * acc = fma(float(dot), wd·xd, acc) per block in order. So each output is that scalar
 * sequence, whatever M, the rows beside it or the thread: the 4-row form and the 1-row form
 * (for M % 4 leftovers) do the same per-row steps. Compared with the 4×4 tiles (one maddubs,
 * widening, conversion and FMA per row, activation row and block, plus a horizontal sum per
 * output) this is about a third of the instructions per product for Q4_0 and a half for Q8_0;
 * the repacking costs about 40 instructions per 8 rows and block, once per call. The sums run
 * in another order than the AVX2 GEMV (T = 1): the two differ by float rounding. */
enum { FTI__P8_MAXNB = 32, FTI__P8_BLOCK = 288 };

/* The 8×8 dword transpose: dword j of v[i] -> lane i of the ymm stored at P + 32j. */
FTI__AVX2 static void fti__p8_transpose_avx2(const __m256i *v, unsigned char *P) {
    __m256i t[8], u[8];
    size_t i;
    for (i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(v[i], v[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(v[i], v[i + 1]);
    }
    for (i = 0; i < 8; i += 4) {
        u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (i = 0; i < 4; i++) {
        _mm256_storeu_si256((__m256i *)(void *)(P + i * 32),
                            _mm256_permute2x128_si256(u[i], u[i + 4], 0x20));
        _mm256_storeu_si256((__m256i *)(void *)(P + (i + 4) * 32),
                            _mm256_permute2x128_si256(u[i], u[i + 4], 0x31));
    }
}

/* Panel form of rows r0..r0+7 (past N: row N-1 again), blocks b0..b0+nb-1, into P. */
FTI__AVX2 static void fti__p8_pack_avx2(const char *W, size_t row_bytes, size_t r0, size_t N,
                                        size_t b0, size_t nb, int q4, unsigned char *P) {
    const char *rows[8];
    size_t i, b, bb = q4 ? sizeof(fti_block_q4_0) : sizeof(fti_block_q8_0);
    for (i = 0; i < 8; i++) rows[i] = W + (r0 + i < N ? r0 + i : N - 1) * row_bytes + b0 * bb;
    for (b = 0; b < nb; b++, P += FTI__P8_BLOCK) {
        __m256i v[8];
        uint16_t h[8];
        for (i = 0; i < 8; i++) {
            const char *blk = rows[i] + b * bb;
            if (q4) {
                __m128i q = _mm_loadu_si128((const __m128i *)(const void *)(blk + 2));
                v[i] = _mm256_and_si256(
                    _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1),
                    _mm256_set1_epi8(15));
            } else {
                v[i] = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2));
            }
            memcpy(&h[i], blk, 2);
        }
        fti__p8_transpose_avx2(v, P);
        _mm256_storeu_ps((float *)(void *)(P + 256),
                         _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)h)));
    }
}

/* x's 4-byte group g of a block, in every dword lane. */
FTI__AVX2 static __m256i fti__p8_x4_avx2(const int8_t *x) {
    int32_t v;
    memcpy(&v, x, 4);
    return _mm256_set1_epi32(v);
}

/* Group j of block b of x (4 activation rows, or 1) against panel ymm w, into the int sums s:
 * Q4_0 in int16 (s = product for j = 0), Q8_0 widened to int32. */
#define FTI__P8_Q4_STEP(NT, INIT)                                                                  \
    do {                                                                                           \
        __m256i w_ = _mm256_loadu_si256((const __m256i *)(const void *)(P + j * 32));              \
        FTI__UNROLL4                                                                               \
        for (m = 0; m < NT; m++) {                                                                 \
            __m256i p_ = _mm256_maddubs_epi16(w_, fti__p8_x4_avx2(x[m] + j * 4));                  \
            s[m] = INIT ? p_ : _mm256_add_epi16(s[m], p_);                                         \
        }                                                                                          \
    } while (0)
#define FTI__P8_Q8_STEP(NT, INIT)                                                                  \
    do {                                                                                           \
        __m256i w_ = _mm256_loadu_si256((const __m256i *)(const void *)(P + j * 32));              \
        __m256i a_ = _mm256_sign_epi8(w_, w_);                                                     \
        FTI__UNROLL4                                                                               \
        for (m = 0; m < NT; m++) {                                                                 \
            __m256i p_ = _mm256_madd_epi16(                                                        \
                _mm256_maddubs_epi16(a_, _mm256_sign_epi8(fti__p8_x4_avx2(x[m] + j * 4), w_)),    \
                ones);                                                                             \
            s[m] = INIT ? p_ : _mm256_add_epi32(s[m], p_);                                         \
        }                                                                                          \
    } while (0)

/* NT activation rows (1 or 4) against nb panel blocks: y[m][0..8) (the lanes of mask; all 8 when
 * full) = (accumulate ? y[m] : 0) + Σ_b dot·(wd·xd), one FMA per block in block order. */
#define FTI__P8_KERNEL(NAME, NT, Q4, STEP)                                                         \
    FTI__AVX2 static void NAME(const unsigned char *P, size_t nb, const int8_t *const *xq,        \
                               const float *const *xd, const int32_t *const *xs,                  \
                               float *const *y, __m256i mask, int full, int accumulate) {         \
        const __m256i ones = _mm256_set1_epi16(1);                                                 \
        __m256 acc[NT];                                                                            \
        size_t m, b, j;                                                                            \
        (void)xs;                                                                                  \
        FTI__UNROLL4                                                                               \
        for (m = 0; m < NT; m++)                                                                   \
            acc[m] = !accumulate ? _mm256_setzero_ps()                                             \
                     : full      ? _mm256_loadu_ps(y[m])                                           \
                                 : _mm256_maskload_ps(y[m], mask);                                 \
        for (b = 0; b < nb; b++, P += FTI__P8_BLOCK) {                                             \
            const int8_t *x[NT];                                                                   \
            __m256i s[NT];                                                                         \
            __m256 wd;                                                                             \
            FTI__UNROLL4                                                                           \
            for (m = 0; m < NT; m++) x[m] = xq[m] + b * FTI_QK;                                    \
            j = 0;                                                                                 \
            STEP(NT, 1);                                                                           \
            for (j = 1; j < 8; j++) STEP(NT, 0);                                                   \
            wd = _mm256_loadu_ps((const float *)(const void *)(P + 256));                          \
            FTI__UNROLL4                                                                           \
            for (m = 0; m < NT; m++) {                                                             \
                __m256i d = s[m];                                                                  \
                if (Q4) /* the nibbles are w + 8 */                                                \
                    d = _mm256_sub_epi32(_mm256_madd_epi16(d, ones),                               \
                                         _mm256_set1_epi32(8 * xs[m][b]));                         \
                acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d),                                    \
                                         _mm256_mul_ps(wd, _mm256_set1_ps(xd[m][b])), acc[m]);     \
            }                                                                                      \
        }                                                                                          \
        FTI__UNROLL4                                                                               \
        for (m = 0; m < NT; m++) {                                                                 \
            if (full) _mm256_storeu_ps(y[m], acc[m]);                                              \
            else _mm256_maskstore_ps(y[m], mask, acc[m]);                                          \
        }                                                                                          \
    }

FTI__P8_KERNEL(fti__p8_q8_0x4_avx2, 4, 0, FTI__P8_Q8_STEP)
FTI__P8_KERNEL(fti__p8_q8_0x1_avx2, 1, 0, FTI__P8_Q8_STEP)
FTI__P8_KERNEL(fti__p8_q4_0x4_avx2, 4, 1, FTI__P8_Q4_STEP)
FTI__P8_KERNEL(fti__p8_q4_0x1_avx2, 1, 1, FTI__P8_Q4_STEP)

/* --- AVX2 compact Q4_0 groups: the packed form that decode reads --------------------------------
 * fti_qpack's form on the AVX2 table (Q4_0 only): per group of 8 rows and per 32-block,
 * FTI__P4C_BLOCK = 144 bytes, the size of the 8 rows' blocks: the 8 fp16 scales (row i at bytes
 * 2i), then 4 ymm of nibbles, ymm c holding in lane i the 4 bytes 4c..4c+3 of row i's qs (an 8×4
 * dword transpose): its low nibbles are the weights 4c..4c+3 of the panel's ymm c, its high
 * nibbles the weights 16+4c.. of ymm c+4. So a group's blocks follow one another and a row range
 * starting at a multiple of 8 starts r0·row_bytes into the form. One activation row reads it
 * directly: per block 4 loads, 3 ops per ymm to split the nibbles, 8 maddubs against x's 4-byte
 * groups, the int16 sums, one widening and one FMA for the 8 rows: about 45 instructions per
 * 144 bytes, where the GEMV on the stored rows (fti__gemv_q4_0_rows4_avx2) needs about 77 for 4
 * rows × 2 blocks (the scales gathered from 8 places, the 8 row-blocks reduced horizontally).
 * Two groups run side by side (two streams and two independent chains: 10-15% faster from DRAM
 * than one on Zen 3). Several activation rows unpack the compact blocks into panel form per
 * chunk and run the panel kernels. Either way each output is the panel kernels' per-row
 * sequence, so the packed and the stored forms give the same bits. */
enum { FTI__P4C_BLOCK = 144, FTI__P8C_BLOCK = 272 /* (Q8_0's, below) */ };

/* The Q8_0 form below is left out of -Os builds (Q8_0 stays in the stored rows there: make
 * size's 150 KB budget). */
#if !defined(__OPTIMIZE_SIZE__)
#define FTI__P8C 1
#else
#define FTI__P8C 0
#endif

/* Compact form (Q4_0, else Q8_0's below) of rows r0..r0+7 (past N: row N-1 again), all nb
 * blocks, into P. */
FTI__AVX2 static void fti__pc_pack_avx2(const char *W, size_t row_bytes, size_t r0, size_t N,
                                        size_t nb, int q4, unsigned char *P) {
    const char *rows[8];
    size_t i, b;
    for (i = 0; i < 8; i++) rows[i] = W + (r0 + i < N ? r0 + i : N - 1) * row_bytes;
#if FTI__P8C
    for (b = 0; !q4 && b < nb; b++, P += FTI__P8C_BLOCK) { /* Q8_0 */
        __m256i v[8];
        size_t off = b * sizeof(fti_block_q8_0);
        for (i = 0; i < 8; i++) {
            v[i] = _mm256_loadu_si256((const __m256i *)(const void *)(rows[i] + off + 2));
            memcpy(P + 2 * i, rows[i] + off, 2);
        }
        fti__p8_transpose_avx2(v, P + 16);
    }
#endif
    for (b = 0; q4 && b < nb; b++, P += FTI__P4C_BLOCK) {
        __m256i a[4], t[4];
        size_t off = b * sizeof(fti_block_q4_0);
        for (i = 0; i < 4; i++) /* a[i] = [row i qs | row i+4 qs] */
            a[i] = _mm256_inserti128_si256(
                _mm256_castsi128_si256(
                    _mm_loadu_si128((const __m128i *)(const void *)(rows[i] + off + 2))),
                _mm_loadu_si128((const __m128i *)(const void *)(rows[i + 4] + off + 2)), 1);
        t[0] = _mm256_unpacklo_epi32(a[0], a[1]); /* dwords 0, 1 of rows 0, 1 (4, 5) */
        t[1] = _mm256_unpackhi_epi32(a[0], a[1]); /* dwords 2, 3 */
        t[2] = _mm256_unpacklo_epi32(a[2], a[3]);
        t[3] = _mm256_unpackhi_epi32(a[2], a[3]);
        _mm256_storeu_si256((__m256i *)(void *)(P + 16), _mm256_unpacklo_epi64(t[0], t[2]));
        _mm256_storeu_si256((__m256i *)(void *)(P + 48), _mm256_unpackhi_epi64(t[0], t[2]));
        _mm256_storeu_si256((__m256i *)(void *)(P + 80), _mm256_unpacklo_epi64(t[1], t[3]));
        _mm256_storeu_si256((__m256i *)(void *)(P + 112), _mm256_unpackhi_epi64(t[1], t[3]));
        for (i = 0; i < 8; i++) memcpy(P + 2 * i, rows[i] + off, 2);
    }
}

/* Panel form (fti__p8_pack_avx2's) of nb compact blocks. */
FTI__AVX2 static void fti__p4c_unpack_avx2(const unsigned char *C, size_t nb, unsigned char *P) {
    const __m256i m4 = _mm256_set1_epi8(15);
    size_t b, c;
    for (b = 0; b < nb; b++, C += FTI__P4C_BLOCK, P += FTI__P8_BLOCK) {
        for (c = 0; c < 4; c++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(C + 16 + c * 32));
            _mm256_storeu_si256((__m256i *)(void *)(P + c * 32), _mm256_and_si256(v, m4));
            _mm256_storeu_si256((__m256i *)(void *)(P + (c + 4) * 32),
                                _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
        }
        _mm256_storeu_ps((float *)(void *)(P + 256),
                         _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)C)));
    }
}

/* One compact block of 8 rows against x's block (xq: its 32 values, xs8 = 8·Σ, sd = xd): acc +=
 * float(Σ nibble·x - 8·Σx)·(wd·xd), the panel kernels' sequence. (Inlined but under -Os, where
 * make size's 150 KB budget counts its two copies.) */
#if defined(__OPTIMIZE_SIZE__)
#define FTI__P4C_INLINE
#else
#define FTI__P4C_INLINE inline __attribute__((always_inline))
#endif
FTI__AVX2 static FTI__P4C_INLINE __m256
fti__p4c_step_avx2(const unsigned char *C, const int8_t *xq, int32_t xs8, float xd, __m256 acc) {
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256i s = _mm256_setzero_si256();
    size_t c;
    for (c = 0; c < 4; c++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(C + 16 + c * 32));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(v, m4),
                                                     fti__p8_x4_avx2(xq + c * 4)));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4),
                                                     fti__p8_x4_avx2(xq + 16 + c * 4)));
    }
    s = _mm256_sub_epi32(_mm256_madd_epi16(s, _mm256_set1_epi16(1)), _mm256_set1_epi32(xs8));
    return _mm256_fmadd_ps(
        _mm256_cvtepi32_ps(s),
        _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)C)),
                      _mm256_set1_ps(xd)),
        acc);
}

/* Stores 8 lanes, or the first n. */
FTI__AVX2 static void fti__p4c_store_avx2(float *y, __m256 v, size_t n) {
    if (n >= 8) _mm256_storeu_ps(y, v);
    else _mm256_maskstore_ps(y, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n),
                                                   _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)), v);
}

/* One activation row against groups [g0, g1) of compact matrix a: y = rows 8g0.. of a·x. */
FTI__AVX2 static void fti__p4c_gemv_avx2(const fti__qm_ctx *c, const fti_qmat *a, size_t g0,
                                         size_t g1) {
    const int8_t *xq = c->xq;
    const float *xd = c->xd;
    const int32_t *xs = c->xs;
    float *y = FTI__QMAT_ROW(a, 0);
    size_t nb = c->nb, gs = nb * FTI__P4C_BLOCK, h = (g1 - g0 + 1) / 2, g, b;
    const unsigned char *P = (const unsigned char *)a->P;
    for (g = g0; g < g0 + h; g++) { /* groups g and g + h side by side (an odd last one twice) */
        size_t g2 = g + h < g1 ? g + h : g;
        const unsigned char *A = P + g * gs, *B = P + g2 * gs;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        for (b = 0; b < nb; b++, A += FTI__P4C_BLOCK, B += FTI__P4C_BLOCK) {
            acc0 = fti__p4c_step_avx2(A, xq + b * FTI_QK, 8 * xs[b], xd[b], acc0);
            acc1 = fti__p4c_step_avx2(B, xq + b * FTI_QK, 8 * xs[b], xd[b], acc1);
        }
        fti__p4c_store_avx2(y + g * 8, acc0, a->N - g * 8);
        if (g2 != g) fti__p4c_store_avx2(y + g2 * 8, acc1, a->N - g2 * 8);
    }
}

#if FTI__P8C
/* --- AVX2 compact Q8_0 groups -------------------------------------------------------------------
 * fti_qpack's Q8_0 form on the AVX2 table, the same idea as Q4_0's above: per group of 8 rows and
 * per 32-block, FTI__P8C_BLOCK = 272 bytes (the 8 rows' blocks): the 8 fp16 scales, then the 8
 * ymm of the panel form (ymm c: in lane i the bytes 4c..4c+3 of row i's qs). One activation row
 * reads it directly: per ymm the sign trick (|w| times x·sign(w), exact for w = -128 too, as the
 * panel kernels), one maddubs, one widening; no repacking per call. Measured on Zen 3, one
 * thread, against the stored rows: 288 -> 32000 from memory 26 -> 31 GB/s, from L3 34 -> 43. */
/* Panel form of nb compact Q8_0 blocks. */
FTI__AVX2 static void fti__p8c_unpack_avx2(const unsigned char *C, size_t nb, unsigned char *P) {
    size_t b;
    for (b = 0; b < nb; b++, C += FTI__P8C_BLOCK, P += FTI__P8_BLOCK) {
        memcpy(P, C + 16, 256);
        _mm256_storeu_ps((float *)(void *)(P + 256),
                         _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)C)));
    }
}

/* One compact Q8_0 block of 8 rows against x's block: acc += float(Σ w·x)·(wd·xd). */
FTI__AVX2 static FTI__P4C_INLINE __m256 fti__p8c_step_avx2(const unsigned char *C,
                                                           const int8_t *xq, float xd,
                                                           __m256 acc) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    size_t c;
    for (c = 0; c < 8; c += 2) { /* two chains */
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(const void *)(C + 16 + c * 32));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(const void *)(C + 48 + c * 32));
        __m256i x0 = _mm256_sign_epi8(fti__p8_x4_avx2(xq + c * 4), w0);
        __m256i x1 = _mm256_sign_epi8(fti__p8_x4_avx2(xq + c * 4 + 4), w1);
        s0 = _mm256_add_epi32(
            s0, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w0, w0), x0), ones));
        s1 = _mm256_add_epi32(
            s1, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w1, w1), x1), ones));
    }
    return _mm256_fmadd_ps(
        _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)),
        _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)C)),
                      _mm256_set1_ps(xd)),
        acc);
}

/* One activation row against groups [g0, g1) of compact Q8_0 matrix a (as fti__p4c_gemv_avx2). */
FTI__AVX2 static void fti__p8c_gemv_avx2(const fti__qm_ctx *c, const fti_qmat *a, size_t g0,
                                         size_t g1) {
    const int8_t *xq = c->xq;
    const float *xd = c->xd;
    float *y = FTI__QMAT_ROW(a, 0);
    size_t nb = c->nb, gs = nb * FTI__P8C_BLOCK, h = (g1 - g0 + 1) / 2, g, b;
    const unsigned char *P = (const unsigned char *)a->P;
    for (g = g0; g < g0 + h; g++) {
        size_t g2 = g + h < g1 ? g + h : g;
        const unsigned char *A = P + g * gs, *B = P + g2 * gs;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        for (b = 0; b < nb; b++, A += FTI__P8C_BLOCK, B += FTI__P8C_BLOCK) {
            acc0 = fti__p8c_step_avx2(A, xq + b * FTI_QK, xd[b], acc0);
            acc1 = fti__p8c_step_avx2(B, xq + b * FTI_QK, xd[b], acc1);
        }
        fti__p4c_store_avx2(y + g * 8, acc0, a->N - g * 8);
        if (g2 != g) fti__p4c_store_avx2(y + g2 * 8, acc1, a->N - g2 * 8);
    }
}
#endif /* FTI__P8C */

/* Group g (rows 8g..8g+7) of matrix a against every activation row. While a chunk meets the
 * activation rows, the weights the next pack reads (the next chunk, or with prefetch_next the
 * next group's first one) are prefetched: 8 row streams, each short, and then a long pause, do
 * not keep the hardware prefetcher ahead. */
FTI__AVX2 static void fti__p8_group_avx2(const fti__qm_ctx *c, const fti_qmat *a, size_t g,
                                         int prefetch_next, unsigned char *buf) {
    int q4 = a->wtype == FTI_DTYPE_Q4_0, cp = a->P != NULL;
    size_t row_bytes = fti_dtype_row_bytes(a->wtype, c->nb * FTI_QK);
    size_t r0 = g * 8, rn = a->N - r0 < 8 ? a->N - r0 : 8, b0, m0, i;
    __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rn),
                                      _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (b0 = 0; b0 < c->nb; b0 += FTI__P8_MAXNB) {
        size_t bn = c->nb - b0 < (size_t)FTI__P8_MAXNB ? c->nb - b0 : (size_t)FTI__P8_MAXNB;
        if (cp && q4) { /* the compact forms (fti_qpack) */
            fti__p4c_unpack_avx2((const unsigned char *)a->P + (g * c->nb + b0) * FTI__P4C_BLOCK,
                                 bn, buf);
#if FTI__P8C
        } else if (cp) {
            fti__p8c_unpack_avx2((const unsigned char *)a->P + (g * c->nb + b0) * FTI__P8C_BLOCK,
                                 bn, buf);
#endif
        } else {
            fti__p8_pack_avx2((const char *)a->W, row_bytes, r0, a->N, b0, bn, q4, buf);
        }
        if (!cp && (b0 + bn < c->nb || (prefetch_next && r0 + 8 < a->N))) {
            size_t nr0 = b0 + bn < c->nb ? r0 : r0 + 8, nb0 = b0 + bn < c->nb ? b0 + bn : 0;
            size_t nbn = c->nb - nb0 < (size_t)FTI__P8_MAXNB ? c->nb - nb0 : (size_t)FTI__P8_MAXNB;
            size_t r, off, bb = row_bytes / c->nb;
            for (r = nr0; r < nr0 + 8 && r < a->N; r++) {
                const char *nx = (const char *)a->W + r * row_bytes + nb0 * bb;
                for (off = 0; off < nbn * bb; off += 64) _mm_prefetch(nx + off, _MM_HINT_T0);
            }
        }
        for (m0 = 0; m0 < c->M;) {
            const int8_t *xq[4];
            const float *xd[4];
            const int32_t *xs[4];
            float *y[4];
            size_t mn = c->M - m0 < 4 ? 1 : 4, n4 = mn;
#if defined(__OPTIMIZE_SIZE__)
            /* -Os (make size's budget): no 1-row kernels; the last rows run in the 4-row ones,
             * repeated (each lane's sequence is the same: the same bits, stored again) */
            mn = c->M - m0 < 4 ? c->M - m0 : 4;
            n4 = 4;
#endif
            for (i = 0; i < n4; i++) {
                size_t m = m0 + (i < mn ? i : mn - 1);
                xq[i] = c->xq + (m * c->nb + b0) * FTI_QK;
                xd[i] = c->xd + m * c->nb + b0;
                xs[i] = c->xs + m * c->nb + b0;
                y[i] = FTI__QMAT_ROW(a, m) + r0;
            }
            if (n4 == 4 && q4) fti__p8_q4_0x4_avx2(buf, bn, xq, xd, xs, y, mask, rn == 8, b0 > 0);
            else if (n4 == 4) fti__p8_q8_0x4_avx2(buf, bn, xq, xd, xs, y, mask, rn == 8, b0 > 0);
            else if (q4) fti__p8_q4_0x1_avx2(buf, bn, xq, xd, xs, y, mask, rn == 8, b0 > 0);
            else fti__p8_q8_0x1_avx2(buf, bn, xq, xd, xs, y, mask, rn == 8, b0 > 0);
            m0 += mn;
        }
    }
}

/* Items are groups of 8 weight rows, numbered through the matrices in order. */
FTI__AVX2 static void fti__p8_task(void *vctx, size_t g0, size_t g1, int thread) {
    const fti__qm_ctx *c = (const fti__qm_ctx *)vctx;
    unsigned char buf[FTI__P8_MAXNB * FTI__P8_BLOCK];
    size_t i, base = 0;
    (void)thread;
    for (i = 0; i < c->n_mats && g0 < g1; i++) {
        size_t ng = (c->mats[i].N + 7) / 8, g = g0;
        /* decode on the compact form (Q8_0's is left out of -Os builds: its P is not one) */
        if (c->M == 1 && c->mats[i].P && (FTI__P8C || c->mats[i].wtype == FTI_DTYPE_Q4_0) &&
            g0 < base + ng) {
            g = g1 < base + ng ? g1 : base + ng;
#if FTI__P8C
            if (c->mats[i].wtype == FTI_DTYPE_Q8_0)
                fti__p8c_gemv_avx2(c, &c->mats[i], g0 - base, g - base);
            else
#endif
                fti__p4c_gemv_avx2(c, &c->mats[i], g0 - base, g - base);
        }
        for (; g < g1 && g < base + ng; g++)
            fti__p8_group_avx2(c, &c->mats[i], g - base, g + 1 < g1, buf);
        g0 = g;
        base += ng;
    }
}

#if !defined(FTI_NO_AVX512)
/* Lanes 0-7 get element 0 of v, lanes 8-15 element 1: the two blocks of a zmm pair. */
FTI__VNNI static __m512 fti__pair_scale_vnni(__m128 v) {
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(v));
}

/* The fp16 scales of blocks b and b+1 (b+1 only when two) as lanes 0-7 / 8-15. */
FTI__VNNI static __m512 fti__pair_wd_vnni(uint16_t d0, uint16_t d1) {
    return fti__pair_scale_vnni(
        _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)d0 | ((uint32_t)d1 << 16)))));
}

/* The activation scales of blocks b, b+1 (or b and 0 for a last odd block). */
FTI__VNNI static __m512 fti__pair_xd_vnni(const float *xd, int two) {
    long long v = 0; /* xd is only 4-byte aligned: the two floats go through memcpy */
    if (two) memcpy(&v, xd, 8);
    return fti__pair_scale_vnni(two ? _mm_castsi128_ps(_mm_cvtsi64_si128(v)) : _mm_load_ss(xd));
}

/* Two activation blocks (64 bytes), or one and zeros. */
FTI__VNNI static __m512i fti__pair_x_vnni(const int8_t *x, int two) {
    return two ? _mm512_loadu_si512((const void *)x)
               : _mm512_maskz_loadu_epi8((__mmask64)0xffffffffu, (const void *)x);
}

/* One step of the Q8_0 tile over blocks b, b+1 (TWO = 0: block b only, the odd last one). */
#define FTI__Q8V_STEP(TWO)                                                                         \
    do {                                                                                           \
        __m512i xv[4];                                                                             \
        __m512 xdv[4];                                                                             \
        FTI__UNROLL4                                                                               \
        for (m = 0; m < 4; m++) { /* x + 128 as unsigned bytes */                                  \
            xv[m] = _mm512_xor_si512(fti__pair_x_vnni(xq[m] + b * FTI_QK, TWO), bias);             \
            xdv[m] = fti__pair_xd_vnni(xd[m] + b, TWO);                                            \
        }                                                                                          \
        FTI__UNROLL4                                                                               \
        for (r = 0; r < 4; r++) {                                                                  \
            const fti_block_q8_0 *wb = (const fti_block_q8_0 *)w[r] + b;                           \
            __m256i lo = _mm256_loadu_si256((const __m256i *)wb[0].qs);                            \
            __m256i hi =                                                                           \
                TWO ? _mm256_loadu_si256((const __m256i *)wb[TWO].qs) : _mm256_setzero_si256();    \
            __m512i wv = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);                    \
            /* (x+128)·w - 128·Σw = x·w: each lane starts from -128·Σ of its 4 weights */          \
            __m512i init = _mm512_sub_epi32(                                                       \
                _mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, wv));    \
            __m512 wdv = fti__pair_wd_vnni(wb[0].d, TWO ? wb[TWO].d : 0);                          \
            FTI__UNROLL4                                                                           \
            for (m = 0; m < 4; m++) {                                                              \
                __m512i d = _mm512_dpbusd_epi32(init, xv[m], wv);                                  \
                acc[m * 4 + r] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(d), xdv[m]),     \
                                                 wdv, acc[m * 4 + r]);                             \
            }                                                                                      \
        }                                                                                          \
    } while (0)

FTI__VNNI static void fti__qtile_q8_0_vnni(const char *const *w, const int8_t *const *xq,
                                           const float *const *xd, const int32_t *const *xs,
                                           size_t nb, float *out) {
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    __m512 acc[16];
    size_t m, r, b;
    (void)xs;
    FTI__UNROLL4
    for (m = 0; m < 4; m++) {
        FTI__UNROLL4
        for (r = 0; r < 4; r++) acc[m * 4 + r] = _mm512_setzero_ps();
    }
    for (b = 0; b + 2 <= nb; b += 2) FTI__Q8V_STEP(1);
    if (b < nb) FTI__Q8V_STEP(0);
    _mm512_storeu_ps(out, fti__hsum16_avx512(acc));
}

/* One step of the Q4_0 tile over blocks b, b+1 (TWO = 0: block b only). */
#define FTI__Q4V_STEP(TWO)                                                                         \
    do {                                                                                           \
        __m512i xv[4], xinit[4];                                                                   \
        __m512 xdv[4];                                                                             \
        FTI__UNROLL4                                                                               \
        for (m = 0; m < 4; m++) {                                                                  \
            /* -Σx in each of a block's 8 lanes: they add up to -8·Σx */                           \
            xv[m] = fti__pair_x_vnni(xq[m] + b * FTI_QK, TWO);                                     \
            xinit[m] =                                                                             \
                _mm512_permutexvar_epi32(idx, _mm512_castsi128_si512(_mm_setr_epi32(               \
                                                  -xs[m][b], TWO ? -xs[m][b + TWO] : 0, 0, 0)));   \
            xdv[m] = fti__pair_xd_vnni(xd[m] + b, TWO);                                            \
        }                                                                                          \
        FTI__UNROLL4                                                                               \
        for (r = 0; r < 4; r++) {                                                                  \
            const fti_block_q4_0 *wb = (const fti_block_q4_0 *)w[r] + b;                           \
            __m128i q0 = _mm_loadu_si128((const __m128i *)wb[0].qs);                               \
            __m128i q1 = TWO ? _mm_loadu_si128((const __m128i *)wb[TWO].qs) : _mm_setzero_si128(); \
            __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1);                \
            /* [q0, q1, q0>>4, q1>>4] -> [lo(b), hi(b), lo(b+1), hi(b+1)], x's order */            \
            __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1); \
            __m512i wv = _mm512_and_si512(_mm512_shuffle_i64x2(z, z, 0xd8), m4);                   \
            __m512 wdv = fti__pair_wd_vnni(wb[0].d, TWO ? wb[TWO].d : 0);                          \
            FTI__UNROLL4                                                                           \
            for (m = 0; m < 4; m++) {                                                              \
                __m512i d = _mm512_dpbusd_epi32(xinit[m], wv, xv[m]);                              \
                acc[m * 4 + r] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(d), xdv[m]),     \
                                                 wdv, acc[m * 4 + r]);                             \
            }                                                                                      \
        }                                                                                          \
    } while (0)

FTI__VNNI static void fti__qtile_q4_0_vnni(const char *const *w, const int8_t *const *xq,
                                           const float *const *xd, const int32_t *const *xs,
                                           size_t nb, float *out) {
    const __m512i m4 = _mm512_set1_epi8(15);
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    __m512 acc[16];
    size_t m, r, b;
    FTI__UNROLL4
    for (m = 0; m < 4; m++) {
        FTI__UNROLL4
        for (r = 0; r < 4; r++) acc[m * 4 + r] = _mm512_setzero_ps();
    }
    for (b = 0; b + 2 <= nb; b += 2) FTI__Q4V_STEP(1);
    if (b < nb) FTI__Q4V_STEP(0);
    _mm512_storeu_ps(out, fti__hsum16_avx512(acc));
}

/* --- AVX-512 VNNI panels: 16 weight rows interleaved, no horizontal sums ---------------------- */
/* In panel form the blocks of a group of 16 weight rows are interleaved so that zmm j of block b
 * holds, in lane i, weights 4j..4j+3 of row i as unsigned bytes (Q8_0: w+128, Q4_0: the nibble,
 * i.e. w+8), followed by the 16 rows' scales as f32 (FTI__QP_BLOCK bytes per block). Then for
 * each activation row, per block: 8 vpdpbusd against x's 4-byte groups broadcast (under
 * GCC/Clang as the instruction's embedded {1to16} memory operand), starting from -c·Σx (c = 128
 * or 8 undoes the offset), one conversion and one FMA with the 16 row scales times xd: lane i
 * ends as row i's output, so 16 outputs are stored at once (masked for a last group of fewer
 * rows) and nothing is reduced horizontally.
 * The weights are either in panel form already (fti_qpack, done once: the batch decoder keeps
 * its model so) or repacked per group on the stack (a 16×8 dword transpose in three vpermt2d
 * stages), in chunks of FTI__QP_MAXNB blocks so any K fits: a chunk's sums continue from the
 * previous chunk's, kept in Y, which gives the same bits as one pass. Either way the repacked
 * group serves all M rows, and both forms give the same results. */
/* 32 weights of block b of a row as unsigned bytes in element order. */
FTI__VNNI static __m256i fti__qp_row32(const char *row, size_t b, int q4) {
    if (q4) {
        __m128i q = _mm_loadu_si128((const __m128i *)(row + b * sizeof(fti_block_q4_0) + 2));
        __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
        return _mm256_and_si256(v, _mm256_set1_epi8(15));
    }
    return _mm256_xor_si256(
        _mm256_loadu_si256((const __m256i *)(row + b * sizeof(fti_block_q8_0) + 2)),
        _mm256_set1_epi8((char)0x80));
}

/* Panel form of rows r0..r0+15 (past N: row N-1 again), blocks 0..nb-1 of W (W may point at a
 * later block of row 0: the rows keep their stride) into P (nb·FTI__QP_BLOCK bytes); with cv8
 * (Q8_0) the compact form instead: per block the 16 fp16 scales, then the same 8 zmm
 * (nb·FTI__CV8_BLOCK bytes). */
FTI__VNNI static void fti__qp_pack_vnni(const char *W, size_t row_bytes, size_t r0, size_t N,
                                        size_t nb, int q4, int cv8, unsigned char *P) {
    const __m512i a0 = _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
    const __m512i b0 = _mm512_setr_epi32(1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
    const __m512i a1 = _mm512_setr_epi32(0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
    const __m512i b1 =
        _mm512_setr_epi32(2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
    const __m512i a2 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    const __m512i b2 =
        _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    const char *rows[16];
    size_t i, b, v;
    size_t bb = q4 ? sizeof(fti_block_q4_0) : sizeof(fti_block_q8_0);
    for (i = 0; i < 16; i++) rows[i] = W + (r0 + i < N ? r0 + i : N - 1) * row_bytes;
    for (b = 0; b < nb; b++, P += cv8 ? FTI__CV8_BLOCK : FTI__QP_BLOCK) {
        __m512i z[8], t;
        uint16_t h[16];
        /* z[k] = [row k | row k+8]: after the transpose lane i is row i */
        for (v = 0; v < 8; v++)
            z[v] = _mm512_inserti64x4(_mm512_castsi256_si512(fti__qp_row32(rows[v], b, q4)),
                                      fti__qp_row32(rows[v + 8], b, q4), 1);
        for (v = 0; v < 8; v += 2) {
            t = _mm512_permutex2var_epi32(z[v], a0, z[v + 1]);
            z[v + 1] = _mm512_permutex2var_epi32(z[v], b0, z[v + 1]);
            z[v] = t;
        }
        for (v = 0; v < 8; v = (v & 1) ? v + 3 : v + 1) { /* pairs (0,2) (1,3) (4,6) (5,7) */
            t = _mm512_permutex2var_epi32(z[v], a1, z[v + 2]);
            z[v + 2] = _mm512_permutex2var_epi32(z[v], b1, z[v + 2]);
            z[v] = t;
        }
        for (v = 0; v < 4; v++) {
            t = _mm512_permutex2var_epi32(z[v], a2, z[v + 4]);
            z[v + 4] = _mm512_permutex2var_epi32(z[v], b2, z[v + 4]);
            z[v] = t;
        }
        for (v = 0; v < 8; v++) _mm512_storeu_si512((void *)(P + (cv8 ? 32 : 0) + v * 64), z[v]);
        for (i = 0; i < 16; i++) memcpy(&h[i], rows[i] + b * bb, 2);
        if (cv8) {
            memcpy(P, h, sizeof h);
            continue;
        }
        _mm512_storeu_ps((float *)(void *)(P + 512),
                         _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)h)));
    }
}

/* GCC does not fold _mm512_set1_epi32 of a loaded int into vpdpbusd's embedded broadcast: the
 * separate broadcasts were the panel loop's bottleneck (measured on Zen 4: decode step 16% faster
 * with the folded form), so GCC and Clang get it as inline assembly. */
#if defined(__GNUC__) && !defined(FTI_NO_INLINE_ASM)
#define FTI__QP_BCST_ASM 1
typedef struct fti__qp_x4 { int8_t b[4]; } fti__qp_x4; /* a 4-byte group of activations */
#endif

/* Activation rows i < 4 (rows i >= mn repeat row mn-1's input and are not stored): the lanes of
 * mask of y[i] = (accumulate ? y[i] : 0) + Σ over nb panel blocks of the 16 rows · x_i. */
FTI__VNNI static void fti__qp_dot_vnni(const unsigned char *P, size_t nb, int32_t c,
                                       const int8_t *const *xq, const float *const *xd,
                                       const int32_t *const *xs, float *const *y, size_t mn,
                                       __mmask16 mask, int accumulate) {
    __m512 acc[4];
    size_t m, b, j;
    FTI__UNROLL4
    for (m = 0; m < 4; m++)
        acc[m] = accumulate ? _mm512_maskz_loadu_ps(mask, y[m]) : _mm512_setzero_ps();
    for (b = 0; b < nb; b++, P += FTI__QP_BLOCK) {
        __m512i d0[4], d1[4];
        __m512 wd = _mm512_loadu_ps((const void *)(P + 512));
        FTI__UNROLL4
        for (m = 0; m < 4; m++) {
            d0[m] = _mm512_set1_epi32(-c * xs[m][b]);
            d1[m] = _mm512_setzero_si512();
        }
        FTI__UNROLL4
        for (j = 0; j < 8; j += 2) {
            __m512i w0 = _mm512_loadu_si512((const void *)(P + j * 64));
            __m512i w1 = _mm512_loadu_si512((const void *)(P + j * 64 + 64));
            FTI__UNROLL4
            for (m = 0; m < 4; m++) {
#if defined(FTI__QP_BCST_ASM)
                /* x's 4-byte group as the instruction's embedded broadcast operand: no separate
                 * broadcast instruction per product */
                const fti__qp_x4 *x0 =
                    (const fti__qp_x4 *)(const void *)(xq[m] + b * FTI_QK + j * 4);
                __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(d0[m]) : "v"(w0), "m"(x0[0]));
                __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(d1[m]) : "v"(w1), "m"(x0[1]));
#else
                int32_t x0, x1;
                memcpy(&x0, xq[m] + b * FTI_QK + j * 4, 4);
                memcpy(&x1, xq[m] + b * FTI_QK + j * 4 + 4, 4);
                d0[m] = _mm512_dpbusd_epi32(d0[m], w0, _mm512_set1_epi32(x0));
                d1[m] = _mm512_dpbusd_epi32(d1[m], w1, _mm512_set1_epi32(x1));
#endif
            }
        }
        FTI__UNROLL4
        for (m = 0; m < 4; m++)
            acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(d0[m], d1[m])),
                                     _mm512_mul_ps(wd, _mm512_set1_ps(xd[m][b])), acc[m]);
    }
    FTI__UNROLL4
    for (m = 0; m < 4; m++)
        if (m < mn) _mm512_mask_storeu_ps(y[m], mask, acc[m]);
}

/* --- AVX-512 VNNI compact groups: the packed forms that decode reads ---------------------------
 * fti_qpack's Q4_0 form on the AVX-512 VNNI table: per group of 16 rows and per 32-block,
 * FTI__CV4_BLOCK = 288 bytes, the size of the 16 rows' blocks: the 16 fp16 scales (row i at
 * bytes 2i), then 4 zmm of nibbles, zmm c holding in lane i the bytes 4c..4c+3 of row i's qs (a
 * 16×4 dword transpose): its low nibbles are the panel form's zmm c, its high nibbles zmm c+4.
 * One activation row reads it directly (fti__cv4_gemv): per block 4 loads, per zmm an AND and
 * one gf2p8affineqb (>> 4), 8 vpdpbusd with x's 4-byte groups broadcast, one conversion and one
 * FMA for the 16 rows, about 22 instructions per 288 bytes where the GEMV on the stored rows
 * (fti__gemv_q4_0_vnni) needs about 40. Several activation rows unpack each chunk into panel
 * form (fti__cv4_unpack) and run fti__qp_dot_vnni. Both give the panel kernel's sequence (the
 * integer dot of a block is exact whatever its order), so the packed and the stored forms give
 * the same bits. Q8_0's form (FTI__CV8_BLOCK = 544 bytes, the 16 rows' blocks): the 16 fp16
 * scales, then the panel form's 8 zmm (w+128 as unsigned bytes); one activation row is 8 loads
 * and 8 vpdpbusd per block, where the stored-row GEMV gathers each row's blocks with vpermt2b.
 * Left out of -Os builds (make size's budget). */
#if !defined(__OPTIMIZE_SIZE__)
#define FTI__CV 1
#else
#define FTI__CV 0
#endif

#if FTI__CV
/* The 16 qs bytes of the Q4_0 block at p. */
#define FTI__CV_QS(p) _mm_loadu_si128((const __m128i *)(const void *)((p) + 2))

/* Compact form of rows r0..r0+15 (past N: row N-1 again), all nb blocks, into P. */
FTI__VNNI static void fti__cv4_pack(const char *W, size_t row_bytes, size_t r0, size_t N,
                                    size_t nb, unsigned char *P) {
    /* dwords c and c+2 of 8 rows from two zmm of 4 rows' qs each (row 4k+r dword c at 4r+c) */
    const __m512i i0 =
        _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 2, 6, 10, 14, 18, 22, 26, 30);
    const __m512i i1 =
        _mm512_setr_epi32(1, 5, 9, 13, 17, 21, 25, 29, 3, 7, 11, 15, 19, 23, 27, 31);
    const char *rows[16];
    size_t i, b, k;
    for (i = 0; i < 16; i++) rows[i] = W + (r0 + i < N ? r0 + i : N - 1) * row_bytes;
    for (b = 0; b < nb; b++, P += FTI__CV4_BLOCK) {
        size_t off = b * sizeof(fti_block_q4_0);
        __m512i z[4], u0, u1, u2, u3;
        for (k = 0; k < 4; k++) {
            const char *const *r = rows + 4 * k;
            __m512i v = _mm512_castsi128_si512(FTI__CV_QS(r[0] + off));
            v = _mm512_inserti32x4(v, FTI__CV_QS(r[1] + off), 1);
            v = _mm512_inserti32x4(v, FTI__CV_QS(r[2] + off), 2);
            z[k] = _mm512_inserti32x4(v, FTI__CV_QS(r[3] + off), 3);
        }
        u0 = _mm512_permutex2var_epi32(z[0], i0, z[1]); /* dwords 0 | 2 of rows 0..7 */
        u1 = _mm512_permutex2var_epi32(z[0], i1, z[1]); /* dwords 1 | 3 */
        u2 = _mm512_permutex2var_epi32(z[2], i0, z[3]); /* rows 8..15 */
        u3 = _mm512_permutex2var_epi32(z[2], i1, z[3]);
        _mm512_storeu_si512((void *)(P + 32), _mm512_shuffle_i64x2(u0, u2, 0x44));
        _mm512_storeu_si512((void *)(P + 96), _mm512_shuffle_i64x2(u1, u3, 0x44));
        _mm512_storeu_si512((void *)(P + 160), _mm512_shuffle_i64x2(u0, u2, 0xee));
        _mm512_storeu_si512((void *)(P + 224), _mm512_shuffle_i64x2(u1, u3, 0xee));
        for (i = 0; i < 16; i++) memcpy(P + 2 * i, rows[i] + off, 2);
    }
}

/* Panel form (fti__qp_pack_vnni's) of nb compact blocks. */
FTI__VNNI static void fti__cv4_unpack(const unsigned char *C, size_t nb, unsigned char *P) {
    const __m512i m4 = _mm512_set1_epi8(15);
    size_t b, c;
    for (b = 0; b < nb; b++, C += FTI__CV4_BLOCK, P += FTI__QP_BLOCK) {
        for (c = 0; c < 4; c++) {
            __m512i v = _mm512_loadu_si512((const void *)(C + 32 + c * 64));
            _mm512_storeu_si512((void *)(P + c * 64), _mm512_and_si512(v, m4));
            _mm512_storeu_si512((void *)(P + (c + 4) * 64),
                                _mm512_and_si512(_mm512_srli_epi16(v, 4), m4));
        }
        _mm512_storeu_ps((float *)(void *)(P + 512),
                         _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)C)));
    }
}

/* d += the 16 rows' unsigned bytes in zmm v (nibbles, or w+128) · x's 4-byte group at x,
 * broadcast. */
#if defined(FTI__QP_BCST_ASM)
#define FTI__CV_DP(d, v, x)                                                                       \
    __asm__("vpdpbusd %2%{1to16%}, %1, %0"                                                         \
            : "+v"(d)                                                                              \
            : "v"(v), "m"(*(const fti__qp_x4 *)(const void *)(x)))
#else
#define FTI__CV_DP(d, v, x)                                                                       \
    do {                                                                                           \
        int32_t x4_;                                                                               \
        memcpy(&x4_, (x), 4);                                                                      \
        (d) = _mm512_dpbusd_epi32((d), (v), _mm512_set1_epi32(x4_));                               \
    } while (0)
#endif

/* acc + float(d0 + d1 + d2 + d3)·(the block's 16 fp16 scales at C times xd): a block's end. */
FTI__VNNI static inline __attribute__((always_inline)) __m512
fti__cv_sum(__m512i d0, __m512i d1, __m512i d2, __m512i d3, const unsigned char *C, float xd,
            __m512 acc) {
    return _mm512_fmadd_ps(
        _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_add_epi32(d0, d1), _mm512_add_epi32(d2, d3))),
        _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)C)),
                      _mm512_set1_ps(xd)),
        acc);
}

/* One compact block of 16 rows against x's block (xq: its 32 values, xs8 = 8·Σx, xd its scale):
 * acc += float(Σ nibble·x - 8·Σx)·(wd·xd), the panel kernel's sequence (4 integer chains). */
FTI__VNNI static inline __attribute__((always_inline)) __m512
fti__cv4_step(const unsigned char *C, const int8_t *xq, int32_t xs8, float xd, __m512 acc) {
    const __m512i m4 = _mm512_set1_epi8(15);
    const __m512i shr4 = _mm512_set1_epi64(0x1020408000000000LL); /* byte >> 4 */
    __m512i v0 = _mm512_loadu_si512((const void *)(C + 32));
    __m512i v1 = _mm512_loadu_si512((const void *)(C + 96));
    __m512i v2 = _mm512_loadu_si512((const void *)(C + 160));
    __m512i v3 = _mm512_loadu_si512((const void *)(C + 224));
    __m512i d0 = _mm512_set1_epi32(-xs8), d1 = _mm512_setzero_si512(), d2 = d1, d3 = d1;
    __m512i l0 = _mm512_and_si512(v0, m4), h0 = _mm512_gf2p8affine_epi64_epi8(v0, shr4, 0);
    __m512i l1 = _mm512_and_si512(v1, m4), h1 = _mm512_gf2p8affine_epi64_epi8(v1, shr4, 0);
    __m512i l2 = _mm512_and_si512(v2, m4), h2 = _mm512_gf2p8affine_epi64_epi8(v2, shr4, 0);
    __m512i l3 = _mm512_and_si512(v3, m4), h3 = _mm512_gf2p8affine_epi64_epi8(v3, shr4, 0);
    FTI__CV_DP(d0, l0, xq);
    FTI__CV_DP(d1, h0, xq + 16);
    FTI__CV_DP(d2, l1, xq + 4);
    FTI__CV_DP(d3, h1, xq + 20);
    FTI__CV_DP(d0, l2, xq + 8);
    FTI__CV_DP(d1, h2, xq + 24);
    FTI__CV_DP(d2, l3, xq + 12);
    FTI__CV_DP(d3, h3, xq + 28);
    return fti__cv_sum(d0, d1, d2, d3, C, xd, acc);
}

/* The same for Q8_0 (xs128 = 128·Σx): acc += float(Σ (w+128)·x - 128·Σx)·(wd·xd). */
FTI__VNNI static inline __attribute__((always_inline)) __m512
fti__cv8_step(const unsigned char *C, const int8_t *xq, int32_t xs128, float xd, __m512 acc) {
    __m512i d0 = _mm512_set1_epi32(-xs128), d1 = _mm512_setzero_si512(), d2 = d1, d3 = d1;
    __m512i v0 = _mm512_loadu_si512((const void *)(C + 32));
    __m512i v1 = _mm512_loadu_si512((const void *)(C + 96));
    __m512i v2 = _mm512_loadu_si512((const void *)(C + 160));
    __m512i v3 = _mm512_loadu_si512((const void *)(C + 224));
    __m512i v4 = _mm512_loadu_si512((const void *)(C + 288));
    __m512i v5 = _mm512_loadu_si512((const void *)(C + 352));
    __m512i v6 = _mm512_loadu_si512((const void *)(C + 416));
    __m512i v7 = _mm512_loadu_si512((const void *)(C + 480));
    FTI__CV_DP(d0, v0, xq);
    FTI__CV_DP(d1, v1, xq + 4);
    FTI__CV_DP(d2, v2, xq + 8);
    FTI__CV_DP(d3, v3, xq + 12);
    FTI__CV_DP(d0, v4, xq + 16);
    FTI__CV_DP(d1, v5, xq + 20);
    FTI__CV_DP(d2, v6, xq + 24);
    FTI__CV_DP(d3, v7, xq + 28);
    return fti__cv_sum(d0, d1, d2, d3, C, xd, acc);
}

/* Panel form of nb compact Q8_0 blocks. */
FTI__VNNI static void fti__cv8_unpack(const unsigned char *C, size_t nb, unsigned char *P) {
    size_t b;
    for (b = 0; b < nb; b++, C += FTI__CV8_BLOCK, P += FTI__QP_BLOCK) {
        memcpy(P, C + 32, 512);
        _mm512_storeu_ps((float *)(void *)(P + 512),
                         _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)C)));
    }
}

/* One activation row against groups [g0, g1) of compact matrix a (STEP, BLOCK bytes a block,
 * the offset's factor OFS): y = rows 16g0.. of a·x; groups g and g + h side by side (two
 * streams, two chains; an odd last one alone). */
#define FTI__CV_GEMV(NAME, STEP, BLOCK, OFS)                                                       \
    FTI__VNNI static void NAME(const fti__qm_ctx *c, const fti_qmat *a, size_t g0, size_t g1) {    \
        const int8_t *xq = c->xq;                                                                  \
        const float *xd = c->xd;                                                                   \
        const int32_t *xs = c->xs;                                                                 \
        float *y = FTI__QMAT_ROW(a, 0);                                                            \
        size_t nb = c->nb, gs = nb * (BLOCK), h = (g1 - g0 + 1) / 2, g, b;                         \
        const unsigned char *P = (const unsigned char *)a->P;                                      \
        for (g = g0; g < g0 + h; g++) {                                                            \
            size_t g2 = g + h < g1 ? g + h : g, n;                                                 \
            const unsigned char *A = P + g * gs, *B = P + g2 * gs;                                 \
            __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;                                        \
            if (g2 != g) {                                                                         \
                for (b = 0; b < nb; b++, A += (BLOCK), B += (BLOCK)) {                             \
                    acc0 = STEP(A, xq + b * FTI_QK, (OFS) * xs[b], xd[b], acc0);                   \
                    acc1 = STEP(B, xq + b * FTI_QK, (OFS) * xs[b], xd[b], acc1);                   \
                }                                                                                  \
                n = a->N - g2 * 16;                                                                \
                _mm512_mask_storeu_ps(y + g2 * 16,                                                 \
                                      (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1u), acc1);     \
            } else {                                                                               \
                for (b = 0; b < nb; b++, A += (BLOCK))                                             \
                    acc0 = STEP(A, xq + b * FTI_QK, (OFS) * xs[b], xd[b], acc0);                   \
            }                                                                                      \
            n = a->N - g * 16;                                                                     \
            _mm512_mask_storeu_ps(y + g * 16, (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1u),    \
                                  acc0);                                                           \
        }                                                                                          \
    }
FTI__CV_GEMV(fti__cv4_gemv, fti__cv4_step, FTI__CV4_BLOCK, 8)
FTI__CV_GEMV(fti__cv8_gemv, fti__cv8_step, FTI__CV8_BLOCK, 128)
#endif /* FTI__CV */

/* Group g (rows 16g..16g+15) of matrix a against every activation row; buf holds a chunk's
 * panels when a has none packed. */
FTI__VNNI static void fti__qp_group_vnni(const fti__qm_ctx *c, const fti_qmat *a, size_t g,
                                         int prefetch_next, unsigned char *buf) {
    int q4 = a->wtype == FTI_DTYPE_Q4_0;
    size_t bb = q4 ? sizeof(fti_block_q4_0) : sizeof(fti_block_q8_0), row_bytes = c->nb * bb;
    size_t r0 = g * 16, rn = a->N - r0 < 16 ? a->N - r0 : 16, b0, m0, i;
    __mmask16 mask = (__mmask16)((1u << rn) - 1u);
    for (b0 = 0; b0 < c->nb; b0 += FTI__QP_MAXNB) {
        size_t bn = c->nb - b0 < (size_t)FTI__QP_MAXNB ? c->nb - b0 : (size_t)FTI__QP_MAXNB;
        const unsigned char *P;
        if (a->P && FTI__CV) { /* the compact forms (fti_qpack) */
#if FTI__CV
            if (q4)
                fti__cv4_unpack((const unsigned char *)a->P + (g * c->nb + b0) * FTI__CV4_BLOCK,
                                bn, buf);
            else
                fti__cv8_unpack((const unsigned char *)a->P + (g * c->nb + b0) * FTI__CV8_BLOCK,
                                bn, buf);
#endif
            P = buf;
        } else if (a->P) { /* (-Os: the panel form) */
            P = (const unsigned char *)a->P + (g * c->nb + b0) * FTI__QP_BLOCK;
        } else {
            fti__qp_pack_vnni((const char *)a->W + b0 * bb, row_bytes, r0, a->N, bn, q4, 0, buf);
            P = buf;
            if (prefetch_next && r0 + 16 < a->N) { /* 16 streams defeat the hardware prefetcher */
                size_t r, off, n_next = a->N - r0 - 16 < 16 ? a->N - r0 - 16 : 16;
                for (r = 0; r < n_next; r++) {
                    const char *nx = (const char *)a->W + (r0 + 16 + r) * row_bytes + b0 * bb;
                    for (off = 0; off < bn * bb; off += 64) _mm_prefetch(nx + off, _MM_HINT_T0);
                }
            }
        }
        for (m0 = 0; m0 < c->M; m0 += 4) {
            const int8_t *xq[4];
            const float *xd[4];
            const int32_t *xs[4];
            float *y[4];
            size_t mn = c->M - m0 < 4 ? c->M - m0 : 4;
            for (i = 0; i < 4; i++) { /* past M: repeat the last row */
                size_t m = m0 + (i < mn ? i : mn - 1);
                xq[i] = c->xq + (m * c->nb + b0) * FTI_QK;
                xd[i] = c->xd + m * c->nb + b0;
                xs[i] = c->xs + m * c->nb + b0;
                y[i] = FTI__QMAT_ROW(a, m) + r0;
            }
            fti__qp_dot_vnni(P, bn, q4 ? 8 : 128, xq, xd, xs, y, mn, mask, b0 > 0);
        }
    }
}

/* Items are groups of 16 weight rows, numbered through the matrices in order. */
FTI__VNNI static void fti__qp_task(void *vctx, size_t g0, size_t g1, int thread) {
    const fti__qm_ctx *c = (const fti__qm_ctx *)vctx;
    unsigned char pbuf[FTI__QP_MAXNB * FTI__QP_BLOCK + 64];
    unsigned char *buf = pbuf + ((64 - ((uintptr_t)pbuf & 63)) & 63);
    size_t i, base = 0;
    (void)thread;
    for (i = 0; i < c->n_mats && g0 < g1; i++) {
        size_t ng = (c->mats[i].N + 15) / 16, g = g0;
#if FTI__CV
        if (c->M == 1 && c->mats[i].P && g0 < base + ng) { /* decode on the compact forms */
            g = g1 < base + ng ? g1 : base + ng;
            if (c->mats[i].wtype == FTI_DTYPE_Q4_0)
                fti__cv4_gemv(c, &c->mats[i], g0 - base, g - base);
            else
                fti__cv8_gemv(c, &c->mats[i], g0 - base, g - base);
        }
#endif
        for (; g < g1 && g < base + ng; g++)
            fti__qp_group_vnni(c, &c->mats[i], g - base, g + 1 < g1, buf);
        g0 = g;
        base += ng;
    }
}
#endif /* !FTI_NO_AVX512 */

FTI__X86_WARN_POP
#endif /* FTI__X86 */

/* --- aarch64 NEON ---------------------------------------------------------------------------- */
#if defined(FTI__NEON)
/* Q4_0 nibbles of one block recentred to -8..7: elements 0..15 and 16..31. */
static void fti__q4_unpack_neon(const uint8_t *qs, int8x16_t *lo, int8x16_t *hi) {
    uint8x16_t q = vld1q_u8(qs);
    *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(15))), vdupq_n_s8(8));
    *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), vdupq_n_s8(8));
}

/* The tile over (w0, w1) register pairs per weight row: dot is the 32-product integer dot. */
#define FTI__QTILE_NEON(NAME, ATTR, LOADW, DOT)                                                    \
    ATTR static void NAME(const char *const *w, const int8_t *const *xq, const float *const *xd,  \
                          const int32_t *const *xs, size_t nb, float *out) {                      \
        float32x4_t acc[4][4];                                                                     \
        size_t m, r, b;                                                                            \
        (void)xs;                                                                                  \
        FTI__UNROLL4                                                                               \
        for (m = 0; m < 4; m++)                                                                    \
            FTI__UNROLL4                                                                           \
            for (r = 0; r < 4; r++) acc[m][r] = vdupq_n_f32(0.0f);                                 \
        for (b = 0; b < nb; b++) {                                                                 \
            int8x16_t wl[4], wh[4];                                                                \
            float wd[4];                                                                           \
            FTI__UNROLL4                                                                           \
            for (r = 0; r < 4; r++) LOADW;                                                         \
            FTI__UNROLL4                                                                           \
            for (m = 0; m < 4; m++) {                                                              \
                const int8_t *xb = xq[m] + b * FTI_QK;                                             \
                int8x16_t x0 = vld1q_s8(xb), x1 = vld1q_s8(xb + 16);                               \
                float xs_ = xd[m][b];                                                              \
                FTI__UNROLL4                                                                       \
                for (r = 0; r < 4; r++)                                                            \
                    acc[m][r] =                                                                    \
                        vfmaq_n_f32(acc[m][r], vcvtq_f32_s32(DOT), wd[r] * xs_);                   \
            }                                                                                      \
        }                                                                                          \
        FTI__UNROLL4                                                                               \
        for (m = 0; m < 4; m++)                                                                    \
            FTI__UNROLL4                                                                           \
            for (r = 0; r < 4; r++) out[m * 4 + r] = vaddvq_f32(acc[m][r]);                        \
    }

#define FTI__LOADW_Q8                                                                              \
    do {                                                                                           \
        const fti_block_q8_0 *wb_ = (const fti_block_q8_0 *)w[r] + b;                              \
        wl[r] = vld1q_s8(wb_->qs);                                                                 \
        wh[r] = vld1q_s8(wb_->qs + 16);                                                            \
        wd[r] = fti_f16_to_f32(wb_->d);                                                            \
    } while (0)
#define FTI__LOADW_Q4                                                                              \
    do {                                                                                           \
        const fti_block_q4_0 *wb_ = (const fti_block_q4_0 *)w[r] + b;                              \
        fti__q4_unpack_neon(wb_->qs, &wl[r], &wh[r]);                                              \
        wd[r] = fti_f16_to_f32(wb_->d);                                                            \
    } while (0)
#define FTI__DOT_MULL fti__dot32_neon(vdupq_n_s32(0), wl[r], wh[r], x0, x1)

FTI__QTILE_NEON(fti__qtile_q8_0_neon, , FTI__LOADW_Q8, FTI__DOT_MULL)
FTI__QTILE_NEON(fti__qtile_q4_0_neon, , FTI__LOADW_Q4, FTI__DOT_MULL)
#if defined(FTI__DOTPROD_OK)
#define FTI__DOT_SDOT vdotq_s32(vdotq_s32(vdupq_n_s32(0), wl[r], x0), wh[r], x1)
FTI__QTILE_NEON(fti__qtile_q8_0_sdot, FTI__DOTPROD, FTI__LOADW_Q8, FTI__DOT_SDOT)
FTI__QTILE_NEON(fti__qtile_q4_0_sdot, FTI__DOTPROD, FTI__LOADW_Q4, FTI__DOT_SDOT)
#endif
#endif /* FTI__NEON */

/* The tile kernel for a table and a weight type (NULL for a type without one). */
static fti__qtile_fn fti__qtile_get(const fti_kernels *k, fti_dtype wtype) {
    int q8 = wtype == FTI_DTYPE_Q8_0;
    if (wtype != FTI_DTYPE_Q8_0 && wtype != FTI_DTYPE_Q4_0) return NULL;
#if defined(FTI__X86)
#if !defined(FTI_NO_AVX512)
    if (k == &fti__kernels_avx512vnni_table)
        return q8 ? fti__qtile_q8_0_vnni : fti__qtile_q4_0_vnni;
    if (k == &fti__kernels_avx512_table) return q8 ? fti__qtile_q8_0_avx2 : fti__qtile_q4_0_avx2;
#endif
    if (k == &fti__kernels_avx2_table) return q8 ? fti__qtile_q8_0_avx2 : fti__qtile_q4_0_avx2;
#endif
#if defined(FTI__NEON)
#if defined(FTI__DOTPROD_OK)
    if (k == &fti__kernels_neon_dot_table) return q8 ? fti__qtile_q8_0_sdot : fti__qtile_q4_0_sdot;
#endif
    if (k == &fti__kernels_neon_table) return q8 ? fti__qtile_q8_0_neon : fti__qtile_q4_0_neon;
#endif
    (void)k;
    return q8 ? fti__qtile_q8_0_ref : fti__qtile_q4_0_ref;
}

/* --- activations ----------------------------------------------------------------------------- */

/* Layout of a qact buffer for (M, nb blocks): xd (M·nb f32), xs (M·nb int32), xq (M·nb·32). */
size_t fti_qact_bytes(size_t M, size_t K) {
    size_t blocks, bytes;
    if (K % FTI_QK) return 0;
    if (!fti_size_mul(M, K / FTI_QK, &blocks) || !fti_size_mul(blocks, FTI_QK + 8, &bytes))
        return 0;
    return bytes;
}

fti_result fti_qact_quantize(const fti_kernels *k, void *buf, const float *X, size_t ldx, size_t M,
                             size_t K) {
    size_t nb = K / FTI_QK, m;
    float *xd = (float *)buf;
    int32_t *xs;
    int8_t *xq;
    if (K % FTI_QK || (M && K && (!buf || !X || ldx < K)) || (M && !fti_qact_bytes(M, K)))
        return FTI_ERR_INVALID;
    if (!k) k = fti_kernels_get(FTI_ISA_AUTO);
    xs = (int32_t *)(xd + M * nb);
    xq = (int8_t *)(xs + M * nb);
    for (m = 0; m < M; m++)
        k->quantize_x(X + m * ldx, nb, xq + m * nb * FTI_QK, xd + m * nb, xs + m * nb);
    return FTI_OK;
}

/* --- the driver ------------------------------------------------------------------------------ */

/* Items are groups of 4 weight rows, numbered through the matrices in order. A thread's range
 * goes in slices of about 16 KiB of weights; each slice meets every activation row (4 at a
 * time) while it sits in L1/L2. */
static void fti__qmm_task(void *vctx, size_t g0, size_t g1, int thread) {
    const fti__qm_ctx *c = (const fti__qm_ctx *)vctx;
    size_t mi, base = 0;
    (void)thread;
    for (mi = 0; mi < c->n_mats && g0 < g1; mi++) {
        const fti_qmat *a = &c->mats[mi];
        size_t ng = (a->N + 3) / 4, e1 = g1 < base + ng ? g1 : base + ng, s0, g, m0, i, j;
        size_t row_bytes = fti_dtype_row_bytes(a->wtype, c->nb * FTI_QK);
        size_t slice = (16384 / (4 * row_bytes)) + 1;
        fti__qtile_fn tile = fti__qtile_get(c->k, a->wtype);
        const char *W = (const char *)a->W;
        for (s0 = g0; s0 < e1; s0 += slice) {
            size_t s1 = e1 - s0 < slice ? e1 : s0 + slice;
            for (m0 = 0; m0 < c->M; m0 += 4) {
                const int8_t *xq[4];
                const float *xd[4];
                const int32_t *xs[4];
                size_t mn = c->M - m0 < 4 ? c->M - m0 : 4;
                for (i = 0; i < 4; i++) { /* past M: repeat the last row */
                    size_t m = m0 + (i < mn ? i : mn - 1);
                    xq[i] = c->xq + m * c->nb * FTI_QK;
                    xd[i] = c->xd + m * c->nb;
                    xs[i] = c->xs + m * c->nb;
                }
                for (g = s0; g < s1; g++) {
                    const char *w[4];
                    float out[16];
                    size_t r0 = (g - base) * 4, rn = a->N - r0 < 4 ? a->N - r0 : 4;
                    for (j = 0; j < 4; j++) w[j] = W + (r0 + (j < rn ? j : rn - 1)) * row_bytes;
                    tile(w, xq, xd, xs, c->nb, out);
                    for (i = 0; i < mn; i++) {
                        float *y = FTI__QMAT_ROW(a, m0 + i) + r0;
                        for (j = 0; j < rn; j++) y[j] = out[i * 4 + j];
                    }
                }
            }
        }
        if (e1 > g0) g0 = e1;
        base += ng;
    }
}

/* 1 when table k runs the multi-row products on 16-row panels (AVX-512 VNNI). */
static int fti__qp_panels(const fti_kernels *k) {
#if defined(FTI__X86) && !defined(FTI_NO_AVX512)
    return k == &fti__kernels_avx512vnni_table;
#else
    (void)k;
    return 0;
#endif
}

/* 1 when table k packs wtype into the compact AVX2 groups (Q4_0, Q8_0). */
static int fti__qp_compact(const fti_kernels *k, fti_dtype wtype) {
#if defined(FTI__X86)
    return k == &fti__kernels_avx2_table &&
           (wtype == FTI_DTYPE_Q4_0 || (FTI__P8C && wtype == FTI_DTYPE_Q8_0));
#else
    (void)k;
    (void)wtype;
    return 0;
#endif
}

/* 1 when table k packs wtype into the compact 16-row groups (AVX-512 VNNI, not under -Os). */
static int fti__cv_compact(const fti_kernels *k, fti_dtype wtype) {
#if defined(FTI__X86) && !defined(FTI_NO_AVX512) && FTI__CV
    return k == &fti__kernels_avx512vnni_table &&
           (wtype == FTI_DTYPE_Q4_0 || wtype == FTI_DTYPE_Q8_0);
#else
    (void)k;
    (void)wtype;
    return 0;
#endif
}

size_t fti_qpack_decode_rows(const fti_kernels *k, fti_dtype wtype) {
    if (!k) k = fti_kernels_get(FTI_ISA_AUTO);
    return fti__qp_compact(k, wtype) ? 8 : fti__cv_compact(k, wtype) ? 16 : 0;
}

size_t fti_qpack_bytes(const fti_kernels *k, fti_dtype wtype, size_t N, size_t K) {
    size_t blocks, bytes, rows = 16, block = FTI__QP_BLOCK;
    if (!k) k = fti_kernels_get(FTI_ISA_AUTO);
    if (fti__qp_compact(k, wtype)) /* FTI__P4C_BLOCK, FTI__P8C_BLOCK */
        rows = 8, block = wtype == FTI_DTYPE_Q4_0 ? 144 : 272;
    else if (fti__cv_compact(k, wtype))
        block = wtype == FTI_DTYPE_Q4_0 ? FTI__CV4_BLOCK : FTI__CV8_BLOCK;
    else if (!fti__qp_panels(k)) return 0;
    if ((wtype != FTI_DTYPE_Q8_0 && wtype != FTI_DTYPE_Q4_0) || N == 0 || K == 0 || K % FTI_QK)
        return 0;
    if (!fti_size_mul((N + rows - 1) / rows, K / FTI_QK, &blocks) ||
        !fti_size_mul(blocks, block, &bytes))
        return 0;
    return bytes;
}

fti_result fti_qpack(const fti_kernels *k, fti_dtype wtype, const void *W, size_t N, size_t K,
                     void *P, size_t P_bytes) {
    size_t need;
    if (!k) k = fti_kernels_get(FTI_ISA_AUTO);
    need = fti_qpack_bytes(k, wtype, N, K);
    if (!need || !W || !P || P_bytes < need) return FTI_ERR_INVALID;
#if defined(FTI__X86)
    if (fti__qp_compact(k, wtype)) {
        size_t nb = K / FTI_QK, g, row_bytes = fti_dtype_row_bytes(wtype, K);
        int q4 = wtype == FTI_DTYPE_Q4_0;
        for (g = 0; g < (N + 7) / 8; g++)
            fti__pc_pack_avx2((const char *)W, row_bytes, g * 8, N, nb, q4,
                              (unsigned char *)P + g * nb * (q4 ? FTI__P4C_BLOCK : FTI__P8C_BLOCK));
        return FTI_OK;
    }
#endif
#if defined(FTI__X86) && !defined(FTI_NO_AVX512)
    {
        size_t nb = K / FTI_QK, g, row_bytes = fti_dtype_row_bytes(wtype, K);
        for (g = 0; g < (N + 15) / 16; g++) {
#if FTI__CV
            if (wtype == FTI_DTYPE_Q4_0) { /* the compact form */
                fti__cv4_pack((const char *)W, row_bytes, g * 16, N, nb,
                              (unsigned char *)P + g * nb * FTI__CV4_BLOCK);
                continue;
            }
#endif
#if FTI__CV
            if (wtype == FTI_DTYPE_Q8_0) { /* the compact form */
                fti__qp_pack_vnni((const char *)W, row_bytes, g * 16, N, nb, 0, 1,
                                  (unsigned char *)P + g * nb * FTI__CV8_BLOCK);
                continue;
            }
#endif
            fti__qp_pack_vnni((const char *)W, row_bytes, g * 16, N, nb, wtype == FTI_DTYPE_Q4_0,
                              0, (unsigned char *)P + g * nb * FTI__QP_BLOCK);
        }
    }
#endif
    return FTI_OK;
}

fti_result fti_matmul_qa_multi(const fti_kernels *k, fti_pool *pool, const fti_qmat *mats,
                               size_t n_mats, const void *qact, size_t M, size_t K) {
    fti__qm_ctx c;
    size_t i, groups = 0, min_rb = (size_t)-1;
    int panels;
    if (!k) k = fti_kernels_get(FTI_ISA_AUTO);
    panels = fti__qp_panels(k);
    if (n_mats && !mats) return FTI_ERR_INVALID;
    for (i = 0; i < n_mats; i++) {
        const fti_qmat *a = &mats[i];
        size_t rb = fti_dtype_row_bytes(a->wtype, K);
        if (!fti__qtile_get(k, a->wtype) || K % FTI_QK || (!a->Yrows && a->ldy < a->N))
            return FTI_ERR_INVALID;
        if (M == 0 || a->N == 0) continue;
        if ((!a->Y && !a->Yrows) ||
            (K && !a->W && !((panels || fti__qp_compact(k, a->wtype)) && a->P)))
            return FTI_ERR_INVALID;
        if (rb < min_rb) min_rb = rb;
    }
    if (M == 0 || n_mats == 0) return FTI_OK;
    if (K == 0) {
        size_t m;
        for (i = 0; i < n_mats; i++)
            for (m = 0; m < M && mats[i].N; m++)
                memset(FTI__QMAT_ROW(&mats[i], m), 0, mats[i].N * sizeof(float));
        return FTI_OK;
    }
    if (!qact || !fti_qact_bytes(M, K)) return FTI_ERR_INVALID;
    memset(&c, 0, sizeof c);
    c.k = k;
    c.mats = mats;
    c.n_mats = n_mats;
    c.M = M;
    c.nb = K / FTI_QK;
    c.xd = (const float *)qact;
    c.xs = (const int32_t *)(c.xd + M * c.nb);
    c.xq = (const int8_t *)(c.xs + M * c.nb);
#if defined(FTI__X86)
    if (k == &fti__kernels_avx2_table) { /* 8-row panels, at least ~16 KiB of weights a thread */
        for (i = 0; i < n_mats; i++) groups += (mats[i].N + 7) / 8;
        if (groups) fti_pool_for(pool, groups, 16384 / (8 * min_rb) + 1, fti__p8_task, &c);
        return FTI_OK;
    }
#endif
    for (i = 0; i < n_mats; i++) groups += (mats[i].N + (panels ? 15 : 3)) / (panels ? 16 : 4);
    if (groups == 0) return FTI_OK;
#if defined(FTI__X86) && !defined(FTI_NO_AVX512)
    if (panels) { /* at least ~16 KiB of weights per thread */
        fti_pool_for(pool, groups, 16384 / (16 * min_rb) + 1, fti__qp_task, &c);
        return FTI_OK;
    }
#endif
    fti_pool_for(pool, groups, 16384 / (4 * min_rb) + 1, fti__qmm_task, &c);
    return FTI_OK;
}

fti_result fti_matmul_qa(const fti_kernels *k, fti_pool *pool, fti_dtype wtype, const void *W,
                         const void *qact, float *Y, size_t ldy, size_t M, size_t N, size_t K) {
    fti_qmat a;
    size_t row_bytes = fti_dtype_row_bytes(wtype, K);
    if (!k) k = fti_kernels_get(FTI_ISA_AUTO);
    if (!fti__qtile_get(k, wtype) || (row_bytes == 0 && K != 0) || ldy < N) return FTI_ERR_INVALID;
    if (M == 0 || N == 0) return FTI_OK;
    if (!Y || (K && (!W || !qact))) return FTI_ERR_INVALID;
    memset(&a, 0, sizeof a);
    a.wtype = wtype;
    a.W = W;
    a.N = N;
    a.Y = Y;
    a.ldy = ldy;
    return fti_matmul_qa_multi(k, pool, &a, 1, qact, M, K);
}

fti_result fti_matmul_q(const fti_kernels *k, fti_pool *pool, fti_dtype wtype, const void *W,
                        const float *X, size_t ldx, float *Y, size_t ldy, size_t M, size_t N,
                        size_t K, void *ws, size_t ws_bytes) {
    size_t need = fti_qact_bytes(M, K);
    void *mem = NULL;
    fti_result rc;
    if (!k) k = fti_kernels_get(FTI_ISA_AUTO);
    if (!fti__qtile_get(k, wtype) || K % FTI_QK || (M && K && !need)) return FTI_ERR_INVALID;
    if (M == 0 || N == 0 || K == 0) return fti_matmul_qa(k, pool, wtype, W, ws, Y, ldy, M, N, K);
    if (!ws || ws_bytes < need) {
        mem = fti_malloc(need);
        if (!mem) return FTI_ERR_NOMEM;
        ws = mem;
    }
    rc = fti_qact_quantize(k, ws, X, ldx, M, K);
    if (rc == FTI_OK) rc = fti_matmul_qa(k, pool, wtype, W, ws, Y, ldy, M, N, K);
    fti_free(mem);
    return rc;
}
