/* === model: the Llama architecture's configuration, parameter layout and passes === */
/*
 * A model is a configuration plus a list of named tensors. The names, shapes and order are those of
 * llama.cpp's GGUF files, so the model file (part 06) maps tensors without transposes:
 *
 *   token_embd            (V, C)      embedding; also the output projection when tied
 *   blk.N.attn_norm       (C)         RMSNorm weight before attention
 *   blk.N.attn_q          (H*D, C)    query projection, rows = outputs
 *   blk.N.attn_k          (KV*D, C)   key projection (KV = kv heads, grouped-query attention)
 *   blk.N.attn_v          (KV*D, C)
 *   blk.N.attn_output     (C, H*D)
 *   blk.N.ffn_norm        (C)
 *   blk.N.ffn_gate        (F, C)      SwiGLU: down(silu(gate x) * up x)
 *   blk.N.ffn_up          (F, C)
 *   blk.N.ffn_down        (C, F)
 *   output_norm           (C)
 *   output                (V, C)      absent when tied
 *
 * Shapes above are (rows, cols) row-major; GGUF lists dims innermost first, i.e. (cols, rows).
 * RoPE rotates adjacent pairs (2i, 2i+1) of each head with theta_i = base^(-2i/D).
 */
#ifndef FTI_MODEL_H
#define FTI_MODEL_H

#include "00_base.h"
#include "01_threads.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fti_model_config {
    uint32_t vocab_size;   /* V */
    uint32_t dim;          /* C, model width */
    uint32_t n_layers;     /* L */
    uint32_t n_heads;      /* H; head dim D = dim / n_heads */
    uint32_t n_kv_heads;   /* KV, divides n_heads (0 = n_heads) */
    uint32_t hidden_dim;   /* F, SwiGLU width */
    uint32_t context_len;  /* T max */
    float rope_base;       /* 0 = 10000 */
    float norm_eps;        /* 0 = 1e-5 */
    int tied_embeddings;   /* 1: output projection is token_embd */
} fti_model_config;

/* The kinds of tensor in a layer, in the order they are laid out. */
typedef enum fti_tensor_kind {
    FTI_TENSOR_TOKEN_EMBD = 0,
    FTI_TENSOR_ATTN_NORM,
    FTI_TENSOR_ATTN_Q,
    FTI_TENSOR_ATTN_K,
    FTI_TENSOR_ATTN_V,
    FTI_TENSOR_ATTN_OUTPUT,
    FTI_TENSOR_FFN_NORM,
    FTI_TENSOR_FFN_GATE,
    FTI_TENSOR_FFN_UP,
    FTI_TENSOR_FFN_DOWN,
    FTI_TENSOR_OUTPUT_NORM,
    FTI_TENSOR_OUTPUT,
    FTI_TENSOR_KIND_COUNT
} fti_tensor_kind;

/* One tensor of the layout: GGUF name, kind, layer (-1 for global), rows x cols (cols = 1 for
 * vectors) and its offset in elements into one contiguous f32 parameter block. */
typedef struct fti_tensor_info {
    char name[48];
    fti_tensor_kind kind;
    int layer;
    size_t rows;
    size_t cols;
    size_t offset;     /* in elements */
    int is_norm;       /* 1 for RMSNorm weights (no weight decay, kept F32 when quantizing) */
} fti_tensor_info;

/* Fills defaults (n_kv_heads, rope_base, norm_eps) and validates: dims non-zero, dim divisible by
 * n_heads, head dim even, n_heads divisible by n_kv_heads, sizes without overflow and within the
 * FTI_MODEL_MAX_* limits. Errors: FTI_ERR_INVALID, FTI_ERR_LIMIT (err names the values).
 * Thread safety: any thread. */
FTIDEF fti_result fti_model_config_resolve(fti_model_config *cfg, fti_error *err);
/* Named presets: "tiny" (tests, ~100k params), "small", "stories15M" (dim 288, 6 layers, 6 heads,
 * hidden 768, context 256), "stories42M", "stories110M". vocab_size is left for the caller to set
 * (0 means: keep the preset's default 4096). Errors (err optional): FTI_ERR_NOT_FOUND for an
 * unknown name, the message naming it and listing the presets ("unknown model preset \"huge\"
 * (tiny, small, stories15M, stories42M, stories110M)"); FTI_ERR_INVALID for a NULL name or cfg.
 * cfg is unchanged on an error. Thread safety: any thread (all functions of this layout
 * section). */
FTIDEF fti_result fti_model_preset(const char *name, fti_model_config *cfg, fti_error *err);
/* Number of tensors in the layout (tied models have no `output`). */
FTIDEF size_t fti_model_n_tensors(const fti_model_config *cfg);
/* Fills the i-th tensor's info (0 <= i < n_tensors) in layout order: token_embd, then each layer's
 * attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down, then
 * output_norm, output. Returns the total parameter count when info is NULL and i == (size_t)-1. */
FTIDEF size_t fti_model_tensor_info(const fti_model_config *cfg, size_t i, fti_tensor_info *info);
/* Total number of parameters (elements of the contiguous f32 block). */
FTIDEF size_t fti_model_n_params(const fti_model_config *cfg);

/* Fills params (n_params floats) with the standard initialisation for a fresh model, from `seed`
 * alone (the same seed gives the same weights on every machine): matrices N(0, 0.02), the output
 * projections of each residual branch (attn_output, ffn_down) N(0, 0.02 / sqrt(2 L)), norm
 * weights 1. Thread safety: any thread. */
FTIDEF void fti_model_init_params(const fti_model_config *cfg, float *params, uint64_t seed);
/* Index of the tensor with layout name `name` (without llama.cpp's ".weight"), or (size_t)-1. */
FTIDEF size_t fti_model_tensor_find(const fti_model_config *cfg, const char *name);

/* --- forward and backward ----------------------------------------------------------------------
 *
 * Training runs over a batch of B sequences of T tokens (N = B*T rows). fti_model_acts is the
 * activation memory for one (B, T): planned once (one aligned block carved by a size table) and
 * reused by every step, so a step allocates nothing. Forward caches what backward needs (norm
 * inputs and reciprocal rms, rotated q and k, attention probabilities, SwiGLU inputs, softmax
 * probabilities of the output); backward consumes them.
 *
 * Every loop is split over output rows (or over independent (batch, kv-head) groups) and every
 * reduction runs in a fixed order, so results are bit-identical for any pool size. */
typedef struct fti_model_acts fti_model_acts;

/* Plans and allocates activation memory for batches of up to `batch` sequences of up to `ctx`
 * tokens (ctx <= cfg->context_len). *out is freed with fti_model_acts_free.
 * Errors: FTI_ERR_INVALID (bad config or sizes), FTI_ERR_LIMIT (size overflow), FTI_ERR_NOMEM.
 * Thread safety: one thread per object. */
FTIDEF fti_result fti_model_acts_create(const fti_model_config *cfg, size_t batch, size_t ctx,
                                        fti_model_acts **out, fti_error *err);
/* Frees the activations; NULL is fine. */
FTIDEF void fti_model_acts_free(fti_model_acts *acts);
/* Bytes of activation memory held. Thread safety: any thread. */
FTIDEF size_t fti_model_acts_bytes(const fti_model_acts *acts);
/* Mixed precision: with on != 0 every matmul of forward and backward (the linear layers, their
 * weight gradients and attention) rounds its inputs to bf16 and sums in fp32 (FTI_MM_BF16);
 * parameters, gradients, norms, softmax and the optimizer stay fp32. Returns 1 if the kernels
 * honour it (AVX-512 BF16, or the scalar table), 0 if products stay fp32 (on = 0, or no bf16
 * kernels here). Thread safety: one thread per acts object, between steps. */
FTIDEF int fti_model_acts_set_bf16(fti_model_acts *acts, int on);
/* Residual dropout for the following forward passes (and the backward of each): every element
 * of each layer's attention-branch and FFN-branch output (after attn_output and ffn_down, before
 * it joins the residual stream) is zeroed with probability p and the rest are scaled by
 * 1/(1-p). Which elements is a hash of (seed, layer, branch, row0 + row, channel), where row =
 * b*ctx + t of the forward's batch: no mask is stored, it does not depend on the thread count,
 * and a batch split over processes (row0 = the first window's row) drops the same elements as
 * one process would. p = 0 (the default) turns it off, as evaluation wants; p must lie in
 * [0, 1) (returns 0 and changes nothing otherwise), else 1. Thread safety: one thread per acts
 * object, between passes. */
FTIDEF int fti_model_acts_set_dropout(fti_model_acts *acts, float p, uint64_t seed, size_t row0);

/* Forward pass over tokens (B,T) (each < vocab_size). With targets (B,T) it computes the mean
 * cross-entropy into *loss (summed in double; targets < 0 are ignored) and keeps the softmax
 * probabilities for backward; without targets (NULL) it leaves the logits (B,T,V), readable by
 * fti_model_acts_logits. batch <= the planned batch, ctx <= the planned ctx. pool may be NULL.
 * Errors: FTI_ERR_INVALID (sizes, token id out of range), FTI_ERR_NUMERIC (non-finite loss).
 * Thread safety: one thread per acts object; params are only read. */
FTIDEF fti_result fti_model_forward(const fti_model_config *cfg, const float *params,
                                    fti_model_acts *acts, const int32_t *tokens,
                                    const int32_t *targets, size_t batch, size_t ctx,
                                    fti_pool *pool, double *loss);
/* Backward pass of the last forward (which must have had targets): ACCUMULATES (+=) the gradient
 * of loss * loss_scale into grads (n_params floats, same layout as params). loss_scale lets
 * gradient accumulation average over micro-batches (1/n_micro). grads must not be shared with
 * another call running at the same time. Errors: FTI_ERR_INVALID (no forward with targets
 * before it). Thread safety: one thread per acts object. */
FTIDEF fti_result fti_model_backward(const fti_model_config *cfg, const float *params,
                                     fti_model_acts *acts, float *grads, float loss_scale,
                                     fti_pool *pool);
/* Logits (B,T,V) of the last forward without targets (probabilities after one with targets),
 * owned by acts. Thread safety: one thread per acts object. */
FTIDEF const float *fti_model_acts_logits(const fti_model_acts *acts);

#ifdef __cplusplus
}
#endif
#endif /* FTI_MODEL_H */
