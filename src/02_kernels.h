/* === kernels: GEMM/GEMV, quantized rows, transformer vector ops, CPU dispatch === */
/*
 * The numeric core. Everything the model, the trainer and the inference engine compute goes
 * through here:
 *
 *   dispatch  one static const table of function pointers per instruction set (scalar reference,
 *             x86-64 AVX2+FMA, x86-64 AVX-512, aarch64 NEON). fti_kernels_get(FTI_ISA_AUTO) picks
 *             the best one the CPU supports (CPUID + XGETBV on x86; NEON is baseline on aarch64,
 *             its SDOT variant is chosen from the Linux auxiliary vector); the environment
 *             variable FTI_ISA=scalar|avx2|avx512|neon forces a lower one. The variants are
 *             compiled with per-function target attributes, so users never need -mavx2;
 *             FTI_NO_SIMD (and compilers without GNU-style intrinsics, e.g. tcc) keep only the
 *             scalar table; FTI_NO_AVX512 drops the AVX-512 tables, FTI_NO_DOTPROD the SDOT one.
 *   GEMM      fti_matmul: fp32 C = op(A)·op(B) in the three layouts training needs, optional
 *             accumulate. Blocked: B and A are packed into cache-sized panels and a register-
 *             blocked micro-kernel per ISA runs over zero-padded panels (no scalar edge cliff).
 *   GEMV      fti_matmul_w: Y = X·Wᵀ for weights of any dtype (F32, F16, BF16, Q8_0, Q4_0 in
 *             ggml's block layout, so GGUF tensors are used in place). Quantized weights are
 *             dotted against X quantized to Q8_0 once per row (integer dot per 32-block, VNNI on
 *             AVX-512), exactly like llama.cpp does; F16/BF16 are widened on the fly.
 *   vector    the transformer's ops, forward and backward: RMSNorm, softmax, SiLU, SwiGLU, RoPE,
 *             cross-entropy, AdamW, dot/axpy/scale, and row conversions fp16/bf16/Q8_0/Q4_0.
 *
 * Every operation has a `_ref` scalar implementation (the specification tests compare against)
 * and is reached through the table: `fti_xxx(k, ...)` calls k's variant. Operations where SIMD
 * does not pay (RoPE's trigonometry, cross-entropy's double-precision sums) use the reference
 * in every table. Passing k = NULL means fti_kernels_get(FTI_ISA_AUTO), which re-detects the CPU
 * on every call: hot loops should fetch the table once and keep it.
 *
 * Determinism: every output element is computed in a fixed order that depends only on the
 * table and the shapes. Work is split over output rows/columns, never across a reduction, so
 * results are bit-identical for any thread count (and any pool). Different tables round
 * differently (FMA, block order): compare them with |x - ref| <= atol + rtol*|ref|.
 *
 * Layouts are row-major. Shapes in comments: R rows, C columns (model dim), T tokens, H heads,
 * D head dim, V vocab. Weights are (out, in). Sizes are element counts (size_t) unless named
 * `_bytes`. Pointers may be unaligned unless stated. Output buffers must not overlap inputs
 * unless the comment allows it.
 */
#ifndef FTI_KERNELS_H
#define FTI_KERNELS_H

#include "00_base.h"
#include "01_threads.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- instruction sets, dtypes, blocks --------------------------------------------------------- */

typedef enum fti_isa {
    FTI_ISA_AUTO = 0, /* the best this CPU supports (or $FTI_ISA if it names a supported one) */
    FTI_ISA_SCALAR,   /* portable C reference */
    FTI_ISA_AVX2,     /* x86-64 AVX2 + FMA + F16C */
    FTI_ISA_AVX512,   /* x86-64 AVX-512 F/BW/VL (+VNNI, +BF16 when present) */
    FTI_ISA_NEON      /* aarch64 Advanced SIMD */
} fti_isa;

/* Element types, numbered as ggml/GGUF number them. */
typedef enum fti_dtype {
    FTI_DTYPE_F32 = 0,
    FTI_DTYPE_F16 = 1,
    FTI_DTYPE_Q4_0 = 2,
    FTI_DTYPE_Q8_0 = 8,
    FTI_DTYPE_BF16 = 30
} fti_dtype;

/* Quantization blocks, byte-for-byte ggml's: 32 values share one fp16 scale d.
 * Q8_0 (34 bytes): value i = qs[i] * d.
 * Q4_0 (18 bytes): byte j holds element j in its low nibble and element j+16 in its high nibble;
 *                  value = (nibble - 8) * d.
 * Both structs contain only 1- and 2-byte members, so they have no padding; reading them from a
 * file needs only 2-byte alignment (GGUF data is 32-byte aligned). */
#define FTI_QK 32
typedef struct fti_block_q8_0 {
    uint16_t d; /* fp16 scale */
    int8_t qs[FTI_QK];
} fti_block_q8_0;
typedef struct fti_block_q4_0 {
    uint16_t d; /* fp16 scale */
    uint8_t qs[FTI_QK / 2];
} fti_block_q4_0;

/* "f32", "f16", "q4_0", "q8_0", "bf16", or "?" for a type kernels don't know (as fti_isa_name). */
FTIDEF const char *fti_dtype_name(fti_dtype t);
/* Elements per block (1 for F32/F16/BF16, 32 for Q8_0/Q4_0), 0 if unknown. */
FTIDEF size_t fti_dtype_block_elems(fti_dtype t);
/* Bytes per block (4, 2, 2, 34, 18), 0 if unknown. */
FTIDEF size_t fti_dtype_block_bytes(fti_dtype t);
/* Bytes of a row of n elements; 0 if the type is unknown, n is not a multiple of the block
 * size, or the size overflows. Thread safety: any thread. */
FTIDEF size_t fti_dtype_row_bytes(fti_dtype t, size_t n);

/* --- CPU detection and the kernel tables ------------------------------------------------------ */

/* CPU feature bits reported by fti_cpu_features(). */
#define FTI_CPU_AVX2 (1u << 0)
#define FTI_CPU_FMA (1u << 1)
#define FTI_CPU_F16C (1u << 2)
#define FTI_CPU_AVX512F (1u << 3)
#define FTI_CPU_AVX512BW (1u << 4)
#define FTI_CPU_AVX512VL (1u << 5)
#define FTI_CPU_AVX512DQ (1u << 6)
#define FTI_CPU_AVX512VNNI (1u << 7)
#define FTI_CPU_AVX512BF16 (1u << 8)
#define FTI_CPU_NEON (1u << 9)
#define FTI_CPU_DOTPROD (1u << 10)
#define FTI_CPU_AVX512VBMI (1u << 11)
#define FTI_CPU_GFNI (1u << 12) /* with AVX-512: the 512-bit forms */

/* Features of this CPU that fti can use (OS support for the wide registers checked with XGETBV).
 * Always 0 under FTI_NO_SIMD. Thread safety: any thread. */
FTIDEF unsigned fti_cpu_features(void);
/* Writes a one-line description, e.g. "avx2 fma f16c avx512f ... | tables: scalar avx2 avx512 |
 * auto: avx512", NUL-terminated and truncated to n bytes. Returns out. */
FTIDEF char *fti_cpu_describe(char *out, size_t n);

/* A table of kernels for one instruction set (opaque; static const, never freed). */
typedef struct fti_kernels fti_kernels;

/* The table for isa, or NULL if this build or CPU cannot run it. FTI_ISA_AUTO returns the best
 * supported table, or the one $FTI_ISA names (scalar|avx2|avx512|neon) when that is supported.
 * Never NULL for FTI_ISA_AUTO or FTI_ISA_SCALAR. Thread safety: any thread. */
FTIDEF const fti_kernels *fti_kernels_get(fti_isa isa);
/* The instruction set of a table (NULL means AUTO's choice). */
FTIDEF fti_isa fti_kernels_isa(const fti_kernels *k);
/* "auto", "scalar", "avx2", "avx512", "neon"; "?" for other values. */
FTIDEF const char *fti_isa_name(fti_isa isa);

/* --- GEMM and GEMV ---------------------------------------------------------------------------- */

#define FTI_MM_TRANS_A 1u    /* A is stored (K,M): op(A) = Aᵀ */
#define FTI_MM_TRANS_B 2u    /* B is stored (N,K): op(B) = Bᵀ */
#define FTI_MM_ACCUMULATE 4u /* C += op(A)·op(B) instead of C = op(A)·op(B) */
/* Mixed precision: A and B are rounded to bf16 (nearest even) and multiplied with fp32 sums
 * (vdpbf16ps on AVX-512 BF16: twice the fp32 FMA rate). Honoured by tables with a bf16
 * micro-kernel: the scalar reference and AVX-512 on CPUs with AVX512_BF16 (see
 * fti_matmul_has_bf16); the others ignore it and compute in fp32. */
#define FTI_MM_BF16 8u

/* C(M,N) = op(A)(M,K) · op(B)(K,N), fp32, row-major with leading dimensions (row strides in
 * elements): A is (M,K) with lda >= K, or (K,M) with lda >= M under FTI_MM_TRANS_A; B is (K,N)
 * with ldb >= N, or (N,K) with ldb >= K under FTI_MM_TRANS_B; C is (M,N) with ldc >= N.
 * The three training products: forward Y = X·Wᵀ (TRANS_B), dX = dY·W (none), dW += dYᵀ·X
 * (TRANS_A | ACCUMULATE). K = 0 sets C to 0 (or leaves it under ACCUMULATE). C must not
 * overlap A or B. pool may be NULL (one thread). Results are bit-identical for any pool size.
 * Never fails: if scratch memory cannot be allocated it computes with the reference.
 * Thread safety: any thread; the pool must not be in use by another call. */
FTIDEF void fti_matmul(const fti_kernels *k, fti_pool *pool, unsigned flags, size_t M, size_t N,
                       size_t K, const float *A, size_t lda, const float *B, size_t ldb, float *C,
                       size_t ldc);

/* 1 when fti_matmul on table k honours FTI_MM_BF16 (scalar table: yes, as the reference; AVX-512:
 * when the CPU has AVX512_BF16; AVX2, NEON: no). Thread safety: any thread. */
FTIDEF int fti_matmul_has_bf16(const fti_kernels *k);

/* Y(T,n_out) = X(T,n_in) · W(n_out,n_in)ᵀ for a weight matrix W of dtype wtype (rows of n_in
 * elements, each row fti_dtype_row_bytes(wtype, n_in) bytes, rows contiguous). T = 1 is the
 * decode GEMV; T > 1 is prefill. F32 weights with T > 4 use fti_matmul. Q8_0 and Q4_0 weights
 * are dotted against X quantized to Q8_0 per 32-block (integer dot per block, as ggml does), so
 * the result differs from dequantize-then-f32 by the activation rounding (about 0.4% of
 * sum|w·x|).
 * F16/BF16 are widened to f32 and dotted in f32. W needs 2-byte alignment. Returns FTI_OK, or
 * FTI_ERR_INVALID for an unknown wtype or n_in not a multiple of 32 for Q8_0/Q4_0. Never fails
 * for lack of memory (falls back to the reference). Bit-identical for any pool size.
 * Thread safety: any thread; the pool must not be in use by another call. */
FTIDEF fti_result fti_matmul_w(const fti_kernels *k, fti_pool *pool, fti_dtype wtype, const void *W,
                               const float *X, float *Y, size_t T, size_t n_out, size_t n_in);

/* Quantized multi-row matmul (prefill and batched decoding; src/02_kernels_quant.c).
 * Y(M,N) (row stride ldy >= N) = X(M,K)·W(N,K)ᵀ for W in Q8_0 or Q4_0 rows (ggml blocks, each
 * row fti_dtype_row_bytes(wtype, K) bytes, rows contiguous, 2-byte aligned) and X quantized to
 * int8 32-blocks exactly as fti_matmul_w does (so results differ from dequantize-then-f32 by the
 * activation rounding, about 0.4% of sum|w·x|). Tiles of 4 X rows × 4 W rows (AVX2: panels of 8
 * W rows repacked per 32 blocks; AVX-512 VNNI: 16-row panels) reuse every weight block from
 * registers and every ~16 KiB slice of W from cache across all M rows: the cost of
 * W's memory traffic is paid once, not M times. Bit-identical for any pool size and for any M
 * (row m's result does not depend on the other rows). K must be a multiple of 32.
 * Thread safety: any thread; the pool must not be in use by another call. */
/* Bytes of a quantized-activation buffer for M rows of K elements (0 if K % 32 or overflow). */
FTIDEF size_t fti_qact_bytes(size_t M, size_t K);
/* Quantizes X (M,K) (row stride ldx >= K) into buf (fti_qact_bytes(M, K) bytes, 4-byte
 * aligned). Several matmuls with the same input share one buffer. FTI_ERR_INVALID on bad sizes. */
FTIDEF fti_result fti_qact_quantize(const fti_kernels *k, void *buf, const float *X, size_t ldx,
                                    size_t M, size_t K);
/* Y = Xq·Wᵀ from a buffer filled by fti_qact_quantize. FTI_ERR_INVALID for a wtype other than
 * Q8_0/Q4_0 or bad sizes. Allocation-free. */
FTIDEF fti_result fti_matmul_qa(const fti_kernels *k, fti_pool *pool, fti_dtype wtype,
                                const void *W, const void *qact, float *Y, size_t ldy, size_t M,
                                size_t N, size_t K);
/* Both steps: ws (ws_bytes >= fti_qact_bytes(M, K), 4-byte aligned) holds the quantized X; with
 * ws NULL or too small one buffer is allocated (FTI_ERR_NOMEM if that fails). */
FTIDEF fti_result fti_matmul_q(const fti_kernels *k, fti_pool *pool, fti_dtype wtype,
                               const void *W, const float *X, size_t ldx, float *Y, size_t ldy,
                               size_t M, size_t N, size_t K, void *ws, size_t ws_bytes);

/* Several products with the same input in one parallel loop (fewer pool barriers: a layer's q,
 * k, v or gate, up): Y_i (M,N_i) (row stride ldy_i >= N_i) = Xq·W_iᵀ for each fti_qmat. With P
 * non-NULL the weights are read in the packed form fti_qpack wrote (the table must be the one
 * that packed them), else from W. Each output is the same bits as fti_matmul_qa gives. */
typedef struct fti_qmat {
    fti_dtype wtype;  /* FTI_DTYPE_Q8_0 or FTI_DTYPE_Q4_0 */
    const void *W;    /* (N,K) ggml rows, or NULL when P is set */
    const void *P;    /* the same weights packed by fti_qpack for this table, or NULL */
    size_t N;
    float *Y;         /* (M,N) rows ldy >= N apart ... */
    size_t ldy;
    float *const *Yrows; /* ... or, when non-NULL, row m at Yrows[m] (Y and ldy unused) */
} fti_qmat;
FTIDEF fti_result fti_matmul_qa_multi(const fti_kernels *k, fti_pool *pool, const fti_qmat *mats,
                                      size_t n_mats, const void *qact, size_t M, size_t K);
/* Weights packed once for the multi-row products (on AVX-512 VNNI: groups of 16 rows, each
 * 32-block's 16 scales then the rows' nibbles (Q4_0) or int8 values (Q8_0) interleaved by 4
 * bytes, exactly the size of the rows, which one activation row (decode) reads about 1.2-2x
 * (Q4_0) and up to 1.1x (Q8_0, from memory; 2x in cache) faster than the stored rows; under -Os
 * the multi-row kernels' 16-row panels, about the size of the Q8_0 rows); on AVX2: groups
 * of 8 rows, the same for Q4_0 and Q8_0 (int8 values), exactly the size of the rows, decode
 * about 1.2-1.8x (Q4_0) and 1.0-1.25x (Q8_0) faster; builds with -Os have the Q4_0 form only).
 * fti_qpack_bytes is 0 when table k has no packed form (or bad sizes): then pass W. P should
 * be 64-byte aligned. FTI_ERR_INVALID when P_bytes is short or the form is missing. The packed
 * form gives the same bits as the stored rows. */
FTIDEF size_t fti_qpack_bytes(const fti_kernels *k, fti_dtype wtype, size_t N, size_t K);
FTIDEF fti_result fti_qpack(const fti_kernels *k, fti_dtype wtype, const void *W, size_t N,
                            size_t K, void *P, size_t P_bytes);
/* G > 0 when table k's packed form of wtype is no larger than the rows and is its fastest form
 * for single-row products (decode: keep a model's matrices so and pass them as fti_qmat.P with
 * M = 1): rows r0 .. of a packed matrix, for r0 a multiple of G, are the packed form that starts
 * r0·fti_dtype_row_bytes(wtype, K) bytes in (a row range as a matrix of its own). 0 otherwise
 * (AVX2 Q4_0 and Q8_0, Q8_0 not under -Os: 8; AVX-512 VNNI Q4_0 and Q8_0, not under -Os:
 * 16; every other table and type: 0). Thread safety:
 * any thread. */
FTIDEF size_t fti_qpack_decode_rows(const fti_kernels *k, fti_dtype wtype);

/* --- BLAS-1 ----------------------------------------------------------------------------------- */

/* Σ x[i]·y[i] over n (accumulated in float lanes, fixed order per table). */
FTIDEF float fti_dot(const fti_kernels *k, const float *x, const float *y, size_t n);
/* y[i] += a·x[i]. */
FTIDEF void fti_axpy(const fti_kernels *k, float *y, float a, const float *x, size_t n);
/* x[i] *= a. */
FTIDEF void fti_scale(const fti_kernels *k, float *x, float a, size_t n);

/* --- the transformer's vector ops (forward and backward) -------------------------------------- */

/* RMSNorm over each row: out = x · rstd · w with rstd = 1/sqrt(mean(x²) + eps).
 * out (R,C) may alias x; rstd (R) receives each row's rstd for the backward (may be NULL);
 * w (C) may be NULL (no gain). */
FTIDEF void fti_rmsnorm_fwd(const fti_kernels *k, float *out, float *rstd, const float *x,
                            const float *w, size_t R, size_t C, float eps);
/* Backward of fti_rmsnorm_fwd. Writes dx (R,C) (=, not +=; may alias dout); ACCUMULATES the
 * gain's gradient into dw (C) (+=, rows in order; skipped when w or dw is NULL). Needs the
 * forward's x (R,C) and rstd (R). */
FTIDEF void fti_rmsnorm_bwd(const fti_kernels *k, float *dx, float *dw, const float *dout,
                            const float *x, const float *w, const float *rstd, size_t R, size_t C);

/* Numerically stable softmax of each row: p = exp(x - max) / Σ exp(x - max). p (R,C) may alias
 * x. A row that is all -inf (e.g. fully masked) becomes uniform 1/C; NaN propagates. */
FTIDEF void fti_softmax_fwd(const fti_kernels *k, float *p, const float *x, size_t R, size_t C);
/* Backward: dx = p ⊙ (dp - Σ p·dp) per row. dx (R,C) may alias dp. */
FTIDEF void fti_softmax_bwd(const fti_kernels *k, float *dx, const float *p, const float *dp,
                            size_t R, size_t C);

/* SiLU: y = x·σ(x) over n elements (y may alias x). Backward: dx = dy·σ(x)·(1 + x·(1-σ(x))),
 * written (dx may alias dy). */
FTIDEF void fti_silu_fwd(const fti_kernels *k, float *y, const float *x, size_t n);
FTIDEF void fti_silu_bwd(const fti_kernels *k, float *dx, const float *x, const float *dy,
                         size_t n);
/* SwiGLU: h = silu(g) ⊙ u over n elements (h may alias g or u). Backward writes dg and du
 * (dg may alias dh; du must not alias dg). */
FTIDEF void fti_swiglu_fwd(const fti_kernels *k, float *h, const float *g, const float *u,
                           size_t n);
FTIDEF void fti_swiglu_bwd(const fti_kernels *k, float *dg, float *du, const float *g,
                           const float *u, const float *dh, size_t n);

/* RoPE, in place, rotating adjacent pairs (x[2i], x[2i+1]) of each head by angle
 * pos·base^(-2i/D), i in [0, D/2): x' = (x0·cos - x1·sin, x0·sin + x1·cos).
 * x is (T, H, D) with consecutive tokens `row_stride` floats apart (0 = H·D; lets q and k be
 * rotated inside a fused (T, 3C) buffer). Token t sits at position pos[t] when pos != NULL, else
 * pos0 + t. D must be even (an odd last element is left alone). Call once for q, once for k.
 * Angles are computed in double. Backward: fti_rope_bwd rotates gradients by -angle. */
FTIDEF void fti_rope_fwd(const fti_kernels *k, float *x, size_t T, size_t H, size_t D,
                         size_t row_stride, size_t pos0, const int32_t *pos, float base);
FTIDEF void fti_rope_bwd(const fti_kernels *k, float *dx, size_t T, size_t H, size_t D,
                         size_t row_stride, size_t pos0, const int32_t *pos, float base);

/* Cross-entropy from logits. For each row r: probs = softmax(logits[r]) and
 * loss[r] = -log probs[targets[r]] (computed in double as logsumexp - logit). A row with
 * targets[r] < 0 or >= V is ignored: loss 0 (probs still written). probs (R,V) may alias
 * logits; loss (R) may be NULL. Returns the number of rows that were not ignored. The caller
 * sums losses (in double, N7) and checks they are finite. */
FTIDEF size_t fti_xent_fwd(const fti_kernels *k, float *loss, float *probs, const float *logits,
                           const int32_t *targets, size_t R, size_t V);
/* Backward: dlogits[r] = (probs[r] - onehot(targets[r])) · dloss, with dloss the gradient of the
 * total loss with respect to each row's loss (e.g. 1/n_valid for a mean). Ignored rows get
 * zeros. dlogits (R,V) may alias probs (in place). */
FTIDEF void fti_xent_bwd(const fti_kernels *k, float *dlogits, const float *probs,
                         const int32_t *targets, float dloss, size_t R, size_t V);

/* One AdamW step on a tensor of n elements (PyTorch's torch.optim.AdamW semantics):
 *   g = grad·grad_scale;  m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²
 *   param *= 1 - lr·weight_decay            (only when decay != 0: e.g. not for norms)
 *   param -= lr · (m / (1-β1^step)) / (sqrt(v / (1-β2^step)) + eps)
 * step counts from 1. grad is read only. The hyperparameters are plain fields (set all). */
typedef struct fti_adamw_hparams {
    float lr;
    float beta1;        /* e.g. 0.9 */
    float beta2;        /* e.g. 0.95 */
    float eps;          /* e.g. 1e-8 */
    float weight_decay; /* e.g. 0.1 */
    float grad_scale;   /* gradient multiplier (clipping, loss scaling); 0 is treated as 1 */
    int64_t step;       /* 1-based step number for the bias correction */
} fti_adamw_hparams;
FTIDEF void fti_adamw(const fti_kernels *k, float *param, const float *grad, float *m, float *v,
                      size_t n, const fti_adamw_hparams *hp, int decay);

/* --- conversions and quantization ------------------------------------------------------------- */

/* Scalar conversions (round to nearest even; NaN stays NaN; f16 overflow gives ±inf). */
FTIDEF float fti_f16_to_f32(uint16_t h);
FTIDEF uint16_t fti_f32_to_f16(float f);
FTIDEF float fti_bf16_to_f32(uint16_t h);
FTIDEF uint16_t fti_f32_to_bf16(float f);

/* Row conversions of n elements. */
FTIDEF void fti_f16_to_f32_row(const fti_kernels *k, float *dst, const uint16_t *src, size_t n);
FTIDEF void fti_f32_to_f16_row(const fti_kernels *k, uint16_t *dst, const float *src, size_t n);
FTIDEF void fti_bf16_to_f32_row(const fti_kernels *k, float *dst, const uint16_t *src, size_t n);
FTIDEF void fti_f32_to_bf16_row(const fti_kernels *k, uint16_t *dst, const float *src, size_t n);

/* Encodes n floats as a row of type t (F32, F16, BF16, Q8_0, Q4_0) into dst
 * (fti_dtype_row_bytes(t, n) bytes). Q8_0 (as ggml): d = max|x|/127, q = round(x·(1/d)) with
 * ties away from zero. Q4_0 (as ggml): m = the first element of largest magnitude (with its
 * sign), d = m/-8, q = min(15, trunc(x·(1/d) + 8.5)), each operation rounded in float. Every
 * table gives the same bytes (NaN elements quantize to 0 and do not count in the maximum).
 * Returns FTI_ERR_INVALID for an unknown type or n not a multiple of the block size. */
FTIDEF fti_result fti_quantize_row(const fti_kernels *k, fti_dtype t, void *dst, const float *src,
                                   size_t n);
/* Decodes a row of n elements of type t into floats. Same errors. src needs 2-byte alignment. */
FTIDEF fti_result fti_dequantize_row(const fti_kernels *k, fti_dtype t, float *dst, const void *src,
                                     size_t n);

#ifdef __cplusplus
}
#endif
#endif /* FTI_KERNELS_H */
