/* === infer: the inference engine (mapped weights, KV cache, prefill, decode, sampling) === */
/*
 * Data flow for one request:
 *
 *   fti_engine_open     maps a GGUF llama model (part 06) and keeps views of its tensors in
 *                       place: zero copy, any of F32/F16/BF16/Q8_0/Q4_0 straight from the file.
 *   fti_session_create  one conversation: the KV cache for keys and values, (L, KV/g, n_ctx,
 *                       g*D) each (g kv heads per group: KV/threads when the session's decode
 *                       threads share the heads evenly, so each thread reads its own memory; else
 *                       g = KV, the plain (L, n_ctx, KV*D)), a RoPE table and the scratch of one
 *                       prefill batch, all carved from ONE block (caller memory or a single
 *                       allocation): nothing is allocated after this (but see
 *                       fti_session_eval on prompts over F32 matrices).
 *   fti_session_eval    runs tokens through the model. Prompts go through in batches of n_batch
 *                       tokens, each layer's projections as one GEMM over the batch (part 02's
 *                       fti_matmul_w with T > 1); decoding is the same path with T = 1 (GEMV),
 *                       multi-threaded over output rows by the session's pool.
 *   fti_sampler         turns the last logits into a token: repetition/frequency/presence
 *                       penalties, then greedy (temperature 0) or temperature, top-k, top-p, min-p
 *                       and a seeded draw. Allocates only at creation.
 *   fti_generate        the loop: prefill, then sample/decode until EOS, max tokens, a stop string
 *                       or a full context, streaming text through a callback that never splits a
 *                       UTF-8 character and never shows a stop string (or a prefix of one that
 *                       then completes).
 *
 * The forward pass is the same as part 05's training forward (RMSNorm, grouped-query causal
 * attention with adjacent-pair RoPE, SwiGLU), so on F32 weights the engine's logits equal
 * fti_model_forward's to float rounding. Results do not depend on the thread count.
 *
 * Text: the engine decodes token ids to bytes itself from the file's tokenizer.ggml.tokens
 * (GPT-2 byte-to-unicode form; CONTROL tokens render as nothing). Encoding text to ids is the
 * tokenizer's job (part 03); fti_prompt_fit trims an over-long prompt from the left while keeping
 * its header (the template's first part).
 *
 * Ids: the engine takes int32_t ids (as llama.cpp's llama_token), the tokenizer writes uint32_t
 * ones (fti_tokens). Every id is below FTI_TOK_MAX_VOCAB (2^22), so the tokenizer's array can be
 * passed as it is: `(const int32_t *)toks.ids` (C, and reinterpret_cast in C++: reading an
 * object through the signed type of the same width is allowed in both). fti_prompt_build gives
 * int32_t ids already.
 */
#ifndef FTI_INFER_H
#define FTI_INFER_H

#include "00_base.h"
#include "01_threads.h"
#include "02_kernels.h"
#include "03_tokenizer.h"
#include "05_model.h"
#include "06_format.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- engine: an open model -------------------------------------------------------------------- */

typedef struct fti_engine fti_engine;

typedef struct fti_engine_opts {
    fti_isa isa;        /* kernel table: FTI_ISA_AUTO (default) or a forced one */
    int allow_extra;    /* accept tensors the llama layout does not know (ignored) */
    /* A LoRA adapter (GGUF, llama.cpp's adapter convention as fti-train writes it: general.type
     * "adapter", adapter.type "lora", adapter.lora.alpha, tensors "<name>.weight.lora_a" {in, r}
     * and ".lora_b" {r, out}) merged at load time: W' = W + scale * (alpha / r) * B A. Each
     * adapted matrix becomes an F32 copy in memory (the others stay mapped). NULL = none. */
    const char *lora_path;
    float lora_scale;   /* 0 = 1 */
    /* 1: matrices stay only in the mapped file. By default, where the kernel table has a faster
     * decode form of a type of the same size (AVX2: Q4_0, 8-row groups; AVX-512 VNNI: Q4_0,
     * 16-row groups), those matrices are packed into it at load (a pass over them; the mapped
     * pages are then let go, so resident memory stays one copy) and decode reads about 1.2x
     * (AVX2) to 1.2-2x (AVX-512 VNNI) faster. The results are
     * the same bits either way except for the decode step's sums, which then run in the prompt
     * batch's order. $FTI_REPACK=0 does the same as 1 here. */
    int no_repack;
    /* 1: Q8_0 matrices too (AVX2: the 8-row Q8_0 form, decode 15-25% faster on the stories
     * shapes, prefill 10-50%; AVX-512 VNNI: the 16-row one, decode about 5% faster), at the cost
     * of a pass over them at load that a cold start pays in page faults (stories110M Q8_0: 3 ms
     * -> 85-180 ms, stories15M 3 -> 13-50 ms on the Zen 3 VM); fti-serve asks for it, fti-infer
     * does not. */
    int repack_q8_0;
    /* Optional: the repacking above runs on this pool's threads (not kept; it must not be in
     * use by another call during fti_engine_open). NULL = the calling thread. */
    fti_pool *pool;
} fti_engine_opts;

/* Opens a GGUF llama model: maps the file (fti_gguf_open), validates it
 * (fti_gguf_llama_config), points at every tensor in place and builds the token -> bytes table.
 * Free with fti_engine_close. Errors as fti_gguf_open / fti_gguf_llama_config, plus
 * FTI_ERR_UNSUPPORTED when opts->isa is not available. Thread safety: the engine is read-only
 * after opening; any number of sessions on any threads may share it. */
FTIDEF fti_result fti_engine_open(fti_engine **out, const char *path, const fti_engine_opts *opts,
                                  fti_error *err);
FTIDEF void fti_engine_close(fti_engine *e);
/* The resolved configuration, the open file, and the kernel table in use. */
FTIDEF const fti_model_config *fti_engine_config(const fti_engine *e);
FTIDEF const fti_gguf *fti_engine_gguf(const fti_engine *e);
FTIDEF const fti_kernels *fti_engine_kernels(const fti_engine *e);
/* Type of the 2-D weights (the most common one among them), for reports. */
FTIDEF uint32_t fti_engine_weight_type(const fti_engine *e);
/* Bytes of weights the engine reads per decoded token (all matrices and norms, the output
 * projection included; the embedding row is negligible). */
FTIDEF size_t fti_engine_weight_bytes(const fti_engine *e);
/* Special ids from the file (-1 when absent) and whether a BOS is prepended to prompts. */
FTIDEF int32_t fti_engine_bos(const fti_engine *e);
FTIDEF int32_t fti_engine_eos(const fti_engine *e);
FTIDEF int fti_engine_add_bos(const fti_engine *e);
/* The bytes a token renders as (CONTROL tokens: length 0); NULL for an id out of range. The
 * pointer stays valid until fti_engine_close. */
FTIDEF const char *fti_engine_token_bytes(const fti_engine *e, int32_t id, size_t *out_len);

/* Builds a tokenizer (part 03) from the file's tokenizer.ggml.* metadata: the same ids
 * llama.cpp's gpt2 vocabulary gives. Free with fti_tokenizer_free. FTI_ERR_NOT_FOUND when the
 * file has no vocabulary. Thread safety: any thread. */
FTIDEF fti_result fti_engine_tokenizer(const fti_engine *e, fti_tokenizer **out, fti_error *err);

/* --- prompts: the document template ------------------------------------------------------ */

/* The document template's markers (the feature pipeline's, part 04). */
#ifndef FTI_TEMPLATE_TITLE
#define FTI_TEMPLATE_TITLE "<|title|>"
#define FTI_TEMPLATE_BODY "<|body|>"
#define FTI_TEMPLATE_END "<|endoftext|>"
#endif

/* Appends a document as the feature pipeline tokenizes it for training:
 *     <|title|> encode(title "\n") <|body|> encode(body) <|endoftext|>
 * (the end marker left off with open_body, so the model continues the body). Markers are the
 * tokenizer's special tokens (their text, encoded, if it has none); title and body are untrusted
 * text: special-token strings in them stay text. */
FTIDEF fti_result fti_prompt_append_doc(const fti_tokenizer *tok, const char *title,
                                        size_t title_len, const char *body, size_t body_len,
                                        int open_body, fti_tokens *out);

/* A retrieved document for a prompt (e.g. a BM25 hit of part 04). */
typedef struct fti_prompt_doc {
    const char *title;
    size_t title_len;
    const char *text;
    size_t text_len;
} fti_prompt_doc;

/* A prompt ready to evaluate (ids owned: fti_prompt_free). */
typedef struct fti_prompt {
    int32_t *ids;
    size_t n;
    size_t n_docs_used;   /* retrieved documents that fitted */
    size_t n_dropped;     /* prompt tokens cut from the left to fit */
    size_t n_text;        /* the user's text: the last n_text ids (after its template header) */
} fti_prompt;

/* Builds [BOS if the model adds one] + the retrieved docs (closed documents, best last so it
 * sits next to the question; docs[0] is the best) + the user's text as an open document with
 * `title` (may be NULL). At most max_tokens ids: docs are added best first while they fit;
 * the first that does not fit whole is cut to its beginning (if 16 or more of its body tokens
 * fit) and the rest are left out. If the question alone is too long its body is cut from the
 * LEFT while BOS and the template header are kept. Errors: FTI_ERR_LIMIT (not even the header
 * fits, or it fills max_tokens and no token of a non-empty text would be left), NOMEM. */
FTIDEF fti_result fti_prompt_build(const fti_engine *e, const fti_tokenizer *tok,
                                   const char *title, const char *text, size_t text_len,
                                   const fti_prompt_doc *docs, size_t n_docs, size_t max_tokens,
                                   fti_prompt *out, fti_error *err);
FTIDEF void fti_prompt_free(fti_prompt *p);

/* --- sessions: KV cache and scratch ---------------------------------------------------------- */

typedef struct fti_session fti_session;

/* Element type of a session's KV cache. F16 (llama.cpp's default; fti-serve's) halves the
 * cache and the bytes attention reads per token: keys and values are rounded to f16 (nearest
 * even) when written, and every attention reader (decode, prefill's GEMMs, the batched step)
 * computes in f32 from them. Against an F32 cache, on a trained twin (d 288, 6 layers) the
 * logits move by at most 3e-5 of their largest magnitude (1.7e-4 absolute); on random weights
 * (no learnt structure, very peaky attention) by up to 1.4%. F32 is exact: the library default
 * (FTI_KV_DEFAULT), which the golden tests against the training forward and PyTorch and the
 * 1e-4 batch-vs-session checks rely on (an f16 cache turns 1e-7 differences of the K/V
 * projections between two paths into a 2^-11 rounding flip).
 * Q8 stores each kv head's row of D keys or values as D int8 and one f32 scale (absmax / 127,
 * round to nearest): D + 4 bytes instead of 2·D (0.53 of f16 at D = 64), for long contexts on
 * small machines and fewer bytes read per decoded token. Not ggml's Q8_0 (blocks of 32): one
 * scale per head row, so any head size works, and the scale multiplies each score and each
 * probability once instead of every element. Attention computes in f32 from the int8 values.
 * Its error is that of 8-bit rounding (docs/inference.md has the figures). */
typedef enum fti_kv_type {
    FTI_KV_DEFAULT = 0, /* FTI_KV_F32 */
    FTI_KV_F16 = 1,
    FTI_KV_F32 = 2,
    FTI_KV_Q8 = 3
} fti_kv_type;

/* "f16", "f32", "q8" (FTI_KV_DEFAULT resolves to its type), or NULL for another value; and the
 * inverse (NULL or an unknown name: -1). */
FTIDEF const char *fti_kv_type_name(fti_kv_type t);
FTIDEF int fti_kv_type_parse(const char *name);

typedef struct fti_session_opts {
    size_t n_ctx;     /* context length, 0 = the model's context_len; larger works (RoPE has
                         no limit) but the model was not trained on those positions */
    size_t n_batch;   /* prompt tokens per forward, 0 = 64 */
    fti_pool *pool;   /* borrowed; NULL = single-threaded */
    int fixed_threads; /* 1: decode steps always use the pool. Default: each decode step runs
                          on the pool or on the calling thread alone, whichever is measured to
                          be faster (a busy machine makes every barrier wait for a time slice);
                          results are bit-identical either way */
    void *mem;        /* caller memory for everything (NULL = one allocation) */
    size_t mem_bytes; /* its size: at least fti_session_mem_bytes() */
    fti_kv_type kv_type; /* KV cache elements: 0 = FTI_KV_DEFAULT (f32) */
} fti_session_opts;

/* Bytes a session with these options needs (KV cache + scratch + the session itself; the
 * scratch has one row of dim floats per thread of opts->pool, so pass the same pool to create). */
FTIDEF size_t fti_session_mem_bytes(const fti_engine *e, const fti_session_opts *opts);
/* Creates a session. With opts->mem it never allocates; otherwise exactly once. Errors:
 * FTI_ERR_INVALID (n_ctx above 2^24 or sizes overflow), FTI_ERR_LIMIT (mem too small; err gives
 * the size needed), FTI_ERR_NOMEM. Thread safety: one thread per session. */
FTIDEF fti_result fti_session_create(fti_session **out, const fti_engine *e,
                                     const fti_session_opts *opts, fti_error *err);
FTIDEF void fti_session_free(fti_session *s);
/* Forgets the context (position 0); the memory is kept. */
FTIDEF void fti_session_reset(fti_session *s);
/* Tokens in the KV cache so far, and its capacity. */
FTIDEF size_t fti_session_pos(const fti_session *s);
FTIDEF size_t fti_session_n_ctx(const fti_session *s);
/* The KV cache's element type (FTI_KV_F16, FTI_KV_F32 or FTI_KV_Q8) and its size in bytes. */
FTIDEF fti_kv_type fti_session_kv_type(const fti_session *s);
FTIDEF size_t fti_session_kv_bytes(const fti_session *s);
/* Drops cached positions >= pos (keep a shared prefix, re-evaluate the rest). */
FTIDEF void fti_session_truncate(fti_session *s, size_t pos);
/* Makes dst continue where src is: its KV cache rows 0..pos(src)-1, its position and its last
 * logits (so several samples of one prompt evaluate the prompt once: fti-serve's n > 1). Both
 * must be sessions of the same engine with the same n_ctx and KV type, created for pools of the
 * same thread count (the cache's layout follows it): else FTI_ERR_MISMATCH and dst is unchanged.
 * Copies pos rows of the cache, not n_ctx. Thread safety: src may not be evaluated meanwhile. */
FTIDEF fti_result fti_session_copy(fti_session *dst, const fti_session *src, fti_error *err);

/* Runs n tokens at positions pos .. pos+n-1, appending them to the KV cache, in batches of
 * n_batch. The last token's logits (V) are then at fti_session_logits. With logits_out != NULL
 * (n, V) it receives every token's logits (perplexity, tests). Allocation-free, except that a
 * batch of more than one token over F32 matrices packs them for its GEMM in the pool's
 * per-thread scratch (allocated on the first such call, then kept) or, without a pool, in a
 * block per product; a failed allocation only makes the product run unpacked (no error).
 * Errors: FTI_ERR_INVALID (token id out of range), FTI_ERR_LIMIT (context full: nothing is
 * evaluated), FTI_ERR_UNSUPPORTED (kernel rejected a type). Thread safety: one thread per
 * session. */
FTIDEF fti_result fti_session_eval(fti_session *s, const int32_t *tokens, size_t n,
                                   float *logits_out, fti_error *err);
/* The logits (V) of the last evaluated token; writable (samplers modify them in place). */
FTIDEF float *fti_session_logits(fti_session *s);

/* Mean negative log-likelihood (nats) of tokens[1..n), each given the tokens before it: every
 * token from the second is scored, exactly n - 1 of them; its exp is the perplexity. A text
 * longer than the session's n_ctx is scored in overlapping windows of n_ctx tokens (strided
 * perplexity, see fti_session_token_logprobs): a token sees all the tokens before it in the
 * first window, and at least n_ctx - n_ctx/2 of them after it. The session is reset. Allocates
 * n doubles and one (n_batch, V) buffer. Errors: FTI_ERR_INVALID (n < 2, a token id out of
 * range, n_ctx < 2), those of fti_session_eval, FTI_ERR_NOMEM. */
FTIDEF fti_result fti_session_nll(fti_session *s, const int32_t *tokens, size_t n,
                                  double *mean_nll, fti_error *err);

/* --- batched decoding (continuous batching) --------------------------------------------------- */

/* One decode step for B sessions at once (each at its own position, with its own KV cache):
 * every weight matrix is read once per step for all B tokens through part 02's multi-row
 * quantized matmul (fti_matmul_qa; the input of q/k/v and of gate/up is quantized once), and
 * attention runs per session against its own cache. A fti_batch owns the scratch for up to
 * max_batch sessions with contexts up to max_ctx, so a step allocates nothing (for Q8_0/Q4_0
 * weights; F32/F16/BF16 matrices go through fti_matmul_w, whose F32 GEMM packs into scratch).
 * Results: each session's logits equal what fti_session_eval of its token alone gives to float
 * rounding (the batch sums the same integer dots in another order: about 1e-6 relative on F32,
 * 1e-5 on Q8_0 apart from rare activation-rounding flips), and a session's result does not
 * depend on which other sessions share its step or on the pool size. */
typedef struct fti_batch fti_batch;
/* Errors: FTI_ERR_INVALID (max_batch or max_ctx 0), FTI_ERR_LIMIT (sizes overflow), NOMEM. */
FTIDEF fti_result fti_batch_create(const fti_engine *e, size_t max_batch, size_t max_ctx,
                                   fti_batch **out, fti_error *err);
FTIDEF void fti_batch_free(fti_batch *b);
/* Evaluates tokens[i] in sessions[i] for i < n (n <= max_batch; distinct sessions of bt's engine,
 * n_ctx <= max_ctx, each with room for one more position): afterwards each session's position
 * is one further and fti_session_logits holds its next-token logits. pool may be NULL.
 * Errors: FTI_ERR_INVALID (bad token, foreign or repeated session, n out of range; nothing is
 * evaluated), FTI_ERR_LIMIT (a context is full; nothing is evaluated). Thread safety: one
 * thread per fti_batch, and the sessions must not be used elsewhere during the call. */
FTIDEF fti_result fti_session_eval_batch(fti_batch *bt, fti_session *const *sessions,
                                         const int32_t *tokens, size_t n, fti_pool *pool,
                                         fti_error *err);
/* Runs n tokens of session s at positions pos..pos+n-1 (a prompt) through bt's forward, up to
 * max_batch rows at a time, the rows attending causally: what fti_session_eval(s, tokens, n,
 * logits_out) does, to float rounding, with bt's packed weights (a server's prefill then costs
 * what a batched step of as many rows costs). logits_out (n, V) or NULL; the last token's
 * logits are at fti_session_logits either way. Errors as fti_session_eval's; FTI_ERR_INVALID
 * for a session of another engine or with n_ctx > max_ctx. Thread safety: as
 * fti_session_eval_batch. */
FTIDEF fti_result fti_batch_prefill(fti_batch *bt, fti_session *s, const int32_t *tokens, size_t n,
                                    float *logits_out, fti_pool *pool, fti_error *err);

/* --- sampling --------------------------------------------------------------------------------- */

/* Every field zero means "off", so a zeroed struct is greedy decoding. */
typedef struct fti_sampler_opts {
    float temperature;       /* 0 = greedy (argmax; ties to the lower id); so is a value whose
                                inverse overflows (below about 3e-39), or NaN */
    int top_k;               /* keep the k most likely tokens; 0 = all */
    float top_p;             /* nucleus: smallest set with mass >= top_p; 0 or >= 1 = off */
    float min_p;             /* drop tokens with p < min_p * p_max; 0 = off; above 1 acts as 1 */
    float repeat_penalty;    /* CTRL-style: logit/penalty if > 0 else logit*penalty; 0 or 1 = off */
    float frequency_penalty; /* logit -= count * frequency_penalty (OpenAI) */
    float presence_penalty;  /* logit -= (count > 0) * presence_penalty */
    size_t penalty_last_n;   /* window of recent tokens the penalties look at; 0 = 64; at most
                                2^24 (the longest session context) */
    uint64_t seed;           /* the draw's RNG seed (same seed, same tokens) */
} fti_sampler_opts;

typedef struct fti_sampler fti_sampler;

/* Creates a sampler for a vocabulary of n_vocab (allocates its scratch once). NULL opts =
 * greedy. Thread safety: one thread per sampler. */
FTIDEF fti_result fti_sampler_create(fti_sampler **out, size_t n_vocab,
                                     const fti_sampler_opts *opts);
FTIDEF void fti_sampler_free(fti_sampler *s);
/* Forgets the token history and reseeds. */
FTIDEF void fti_sampler_reset(fti_sampler *s);
/* Adds a token to the history the penalties look at (prompt tokens too, if wanted). */
FTIDEF void fti_sampler_accept(fti_sampler *s, int32_t token);
/* Picks a token from logits (n_vocab, modified in place by penalties and temperature).
 * Allocation-free. Returns the id, or -1 if every logit is NaN (when sampling, also when none is
 * above -inf). +inf logits: one of them, each alike. */
FTIDEF int32_t fti_sampler_sample(fti_sampler *s, float *logits);

/* The log-probabilities of logits[0..n) (log-softmax): returns the log of Σ exp(logits) (so
 * token i's log-probability is logits[i] minus it; -inf when no logit is above -inf, NaN counts as
 * -inf), and writes the k most likely tokens (k above n counts as n), most likely first, ties to
 * the lower id, to ids[0..k) and their log-probabilities to logprobs[0..k) (logprobs may be NULL;
 * ids NULL: neither is written). The kernel table's vector exp (float, about 1e-6 relative),
 * sums in double; allocation-free; O(n·k) at worst. Thread safety: any thread. */
FTIDEF double fti_logprobs_top(const float *logits, size_t n, size_t k, int32_t *ids,
                               float *logprobs);

/* --- generation ------------------------------------------------------------------------------- */

typedef enum fti_finish {
    FTI_FINISH_NONE = 0,
    FTI_FINISH_EOS,      /* the model produced its end-of-sequence token */
    FTI_FINISH_LENGTH,   /* max_tokens reached */
    FTI_FINISH_STOP,     /* a stop string appeared (it is not part of the text) */
    FTI_FINISH_CONTEXT,  /* the KV cache is full */
    FTI_FINISH_CALLBACK  /* the text callback asked to stop */
} fti_finish;

/* Receives generated text in pieces that are whole UTF-8 characters (invalid bytes the model
 * produced arrive as U+FFFD). Return nonzero to stop. */
typedef int (*fti_text_fn)(void *user, const char *text, size_t n_bytes);

typedef struct fti_generate_opts {
    size_t max_tokens;        /* 0 = until EOS / stop / full context */
    const char *const *stop;  /* stop strings (NUL-terminated); generation ends before them */
    size_t n_stop;
    int ignore_eos;           /* keep going after EOS */
    int no_penalize_prompt;   /* 1: the prompt is not fed to the sampler's history */
    fti_text_fn on_text;      /* streaming callback (may be NULL) */
    void *user;
    fti_buf *text;            /* if not NULL, the generated text is appended (it may grow) */
    int32_t *tokens;          /* if not NULL, generated ids are stored (up to tokens_cap) */
    size_t tokens_cap;
    /* Called before each draw with the logits it uses (n_vocab, writable: e.g.
     * fti_ngram_on_logits mixes an n-gram model of the author in) and the tokens before them,
     * oldest first: the last FTI_GENERATE_RECENT or fewer of the prompt and of what was
     * generated so far. NULL = none. */
    void (*on_logits)(void *user, float *logits, size_t n_vocab, const int32_t *recent,
                      size_t n_recent);
    void *logits_user;
} fti_generate_opts;
/* Tokens of context fti_generate passes to on_logits. */
#define FTI_GENERATE_RECENT 16

typedef struct fti_generate_stats {
    size_t n_prompt;       /* prompt tokens evaluated (after the cached prefix) */
    size_t n_generated;    /* tokens sampled */
    double load_s;         /* filled by callers that time loading */
    double prefill_s;      /* prompt evaluation */
    double decode_s;       /* sampling + decode of generated tokens */
    double first_token_s;  /* from the call to the first sampled token */
    fti_finish finish;
} fti_generate_stats;

/* Generates from prompt[0..n_prompt) appended to what the session holds (n_prompt 0: from the
 * logits it holds; a fresh session needs a prompt). Afterwards the session holds the prompt and
 * every generated token (a stop string's too) but an EOS that ended the generation, and the
 * last one when the context filled up: a next call continues after them. Allocates only the
 * stop-string window before the loop (and whatever opts->text grows by). Errors: those of
 * fti_session_eval; FTI_ERR_LIMIT when the prompt does not fit (use fti_prompt_fit first);
 * FTI_ERR_INVALID for NULL, no prompt on an empty session, or a sampler whose n_vocab is not
 * the model's vocab_size (it would read past the logits).
 * stats may be NULL. Thread safety: one thread per session and sampler. */
FTIDEF fti_result fti_generate(fti_session *s, fti_sampler *smp, const int32_t *prompt,
                               size_t n_prompt, const fti_generate_opts *opts,
                               fti_generate_stats *stats, fti_error *err);

/* Fits a prompt made of a header (kept whole: BOS, template header) and a body into
 * max_tokens by dropping the oldest body tokens (left truncation). Writes the result to out
 * (capacity max_tokens) and returns its length; 0 if the header alone does not fit. */
FTIDEF size_t fti_prompt_fit(const int32_t *header, size_t n_header, const int32_t *body,
                             size_t n_body, size_t max_tokens, int32_t *out);

/* === infer: author memory (an n-gram model of the author's tokens, mixed into the model's) === */
/*
 * A small model trained on a few hundred kB of one author's writing is limited by the data: it
 * learns the author's form and vocabulary but strings phrases together loosely. An n-gram model
 * of the same training tokens remembers the author's actual phrases. At generation time the two
 * next-token distributions are mixed (as in cache and kNN language models):
 *
 *     p(w | h) = (1 - λ_b) p_model(w | h) + λ_b p_ngram(w | h)
 *
 * where b, the n-gram's confidence, is the length of the longest suffix of the context h the
 * training tokens contain (0 .. order-1), and the λ_b are fitted by EM on held-out text
 * (fti_ngram_fit) so the mixture is the best such mixture there, per token.
 *
 * p_ngram is interpolated Kneser-Ney with three discounts per order (Chen & Goodman's modified
 * KN): the highest order counts n-grams, lower orders count distinct left contexts; every
 * order is interpolated down to the uniform distribution, so every token has p > 0 and the
 * distribution sums to 1. Built from token ids (the feature store's training shard, whose ids
 * are those of the tokenizer the model was trained with), so training and serving use the same
 * features. Building sorts the positions once (radix sort over the order's ids): linear in the
 * tokens; a few tens of ms for the 127 k tokens of the sample corpus.
 *
 * The file (fti_ngram_save, atomic) stores the order, the vocabulary, the λ_b and every order's
 * sorted n-grams with their counts, and a 64-bit hash of it all; fti_ngram_load checks every
 * count, id and order before use (the discounts are recomputed from the counts).
 */

#define FTI_NGRAM_MAX_ORDER 8
/* Largest vocabulary and training text an n-gram model accepts (ids are 32-bit, positions too). */
#ifndef FTI_NGRAM_MAX_VOCAB
#define FTI_NGRAM_MAX_VOCAB (1u << 24)
#endif
#ifndef FTI_NGRAM_MAX_TOKENS
#define FTI_NGRAM_MAX_TOKENS ((size_t)1 << 30)
#endif

typedef struct fti_ngram fti_ngram;

typedef struct fti_ngram_opts {
    int order; /* n of the n-grams (tokens of context + 1), 1..FTI_NGRAM_MAX_ORDER; 0 = 5 */
} fti_ngram_opts;

/* Builds the model of ids[0..n_ids) (each < n_vocab, else FTI_ERR_INVALID naming the
 * position). The mixing weights start at 0.25 for every confidence until fti_ngram_fit.
 * Errors: FTI_ERR_INVALID (bad order, n_vocab 0 or above FTI_NGRAM_MAX_VOCAB, an id out of
 * range), FTI_ERR_LIMIT (more than FTI_NGRAM_MAX_TOKENS ids), NOMEM. Free with fti_ngram_free.
 * Thread safety: the built model is read-only (any thread) except fti_ngram_fit /
 * fti_ngram_set_lambda (one thread, no readers meanwhile). */
FTIDEF fti_result fti_ngram_build(fti_ngram **out, const uint32_t *ids, size_t n_ids,
                                  size_t n_vocab, const fti_ngram_opts *opts, fti_error *err);
FTIDEF void fti_ngram_free(fti_ngram *m);
/* Writes the model to path atomically (temp file, fsync, rename). */
FTIDEF fti_result fti_ngram_save(const fti_ngram *m, const char *path, fti_error *err);
/* Reads a file fti_ngram_save wrote. Every field is checked before use: FTI_ERR_FORMAT (bad
 * magic, truncated, an id >= the vocabulary, n-grams out of order, a zero count, a weight
 * outside [0, 1]), FTI_ERR_CHECKSUM (the hash), FTI_ERR_UNSUPPORTED (another file version),
 * FTI_ERR_LIMIT (sizes above the limits), each message naming the file. */
FTIDEF fti_result fti_ngram_load(fti_ngram **out, const char *path, fti_error *err);

/* The model's order, vocabulary, the number of tokens it was built from, and the number of
 * distinct n-grams of order k (1..order; 0 otherwise). */
FTIDEF int fti_ngram_order(const fti_ngram *m);
FTIDEF size_t fti_ngram_vocab(const fti_ngram *m);
FTIDEF uint64_t fti_ngram_n_tokens(const fti_ngram *m);
FTIDEF size_t fti_ngram_count(const fti_ngram *m, int k);

/* The next-token distribution after ctx[0..n_ctx) (only its last order-1 tokens matter;
 * ids out of range end the usable context there): probs (V) is filled and sums to 1. Returns
 * the confidence: the length of the longest suffix of ctx found in the training tokens
 * (0..order-1). Thread safety: any thread. */
FTIDEF int fti_ngram_probs(const fti_ngram *m, const int32_t *ctx, size_t n_ctx,
                           float *probs /* (V) */);
/* p(token | ctx) alone (the same value as probs[token]), and the confidence in *conf (may be
 * NULL). 0 for a token out of range. */
FTIDEF double fti_ngram_prob(const fti_ngram *m, const int32_t *ctx, size_t n_ctx,
                             int32_t token, int *conf);

/* The mixing weight λ for a confidence (0..order-1), and setting it (clamped to [0, 1];
 * conf < 0 sets every confidence). */
FTIDEF float fti_ngram_lambda(const fti_ngram *m, int conf);
FTIDEF void fti_ngram_set_lambda(fti_ngram *m, int conf, float lambda);

/* What a mixture does on some text, per token (nats), from fti_ngram_fit / fti_ngram_score. */
typedef struct fti_ngram_fit_stats {
    size_t n_tokens;
    double nll_model, nll_ngram, nll_mix; /* mean -log p of the model, the n-gram, the mixture */
    size_t n_conf[FTI_NGRAM_MAX_ORDER];   /* tokens at each confidence */
} fti_ngram_fit_stats;

/* Fits the weights λ_conf by EM to maximise the likelihood of the mixture on n tokens of
 * held-out text, given each token's probability under the model (p_model), under this n-gram
 * model (p_ngram) and its confidence (conf), as fti_ngram_prob returns them. A confidence with
 * fewer than 50 tokens gets the weight fitted over all tokens. Non-finite or non-positive
 * probabilities are skipped. st (may be NULL) receives the figures with the fitted weights.
 * Errors: FTI_ERR_INVALID (NULL, or no usable token). */
FTIDEF fti_result fti_ngram_fit(fti_ngram *m, const double *p_model, const double *p_ngram,
                                const int *conf, size_t n, fti_ngram_fit_stats *st);
/* The same figures with the current weights (no fitting). */
FTIDEF void fti_ngram_score(const fti_ngram *m, const double *p_model, const double *p_ngram,
                            const int *conf, size_t n, fti_ngram_fit_stats *st);

/* Mixes the n-gram into logits (V) in place: afterwards softmax(logits) is
 * (1 - λ) softmax(logits before) + λ p_ngram(· | ctx), with λ = lambda if lambda >= 0, else
 * the fitted weight of the context's confidence; a temperature applied later sharpens or
 * flattens the mixture. work: V floats of scratch. Returns the confidence. n_vocab must be the
 * model's vocabulary (else nothing is done and -1 is returned). Thread safety: any thread. */
FTIDEF int fti_ngram_mix_logits(const fti_ngram *m, const int32_t *ctx, size_t n_ctx,
                                float lambda, float *logits /* (V) */, size_t n_vocab,
                                float *work /* (V) */);

/* A fti_generate_opts.on_logits hook: fti_generate mixes the n-gram into every draw with
 *     fti_ngram_hook h = {model, work, -1};  opts.on_logits = fti_ngram_on_logits;
 *     opts.logits_user = &h;
 * (work: V floats the caller owns; lambda < 0 = the fitted weights, else that one). */
typedef struct fti_ngram_hook {
    const fti_ngram *ngram;
    float *work;
    float lambda;
} fti_ngram_hook;
FTIDEF void fti_ngram_on_logits(void *hook, float *logits, size_t n_vocab, const int32_t *recent,
                                size_t n_recent);

/* The model's log-probability of every token given the ones before it, the figures fti_session_nll
 * averages: out[0] = NAN (nothing predicts the first token), out[i] = log p(tokens[i] |
 * tokens[w..i)) for i >= 1. Up to n_ctx tokens that is the whole prefix (w = 0); a longer text is
 * scored in windows of n_ctx tokens that start n_ctx/2 apart (the last one ends at the text's
 * end), each scoring only the tokens after the previous window's end: every token is scored once,
 * with at least n_ctx - n_ctx/2 tokens of context after the first window (a text of n > n_ctx
 * tokens costs 1 + ceil((n - n_ctx) / (n_ctx/2)) windows of up to n_ctx - 1 evaluated tokens). The
 * session is reset. Allocates one (n_batch, V) buffer. Errors as fti_session_nll's. */
FTIDEF fti_result fti_session_token_logprobs(fti_session *s, const int32_t *tokens, size_t n,
                                             double *out /* (n) */, fti_error *err);

/* Scores held-out text with the model of session s, the n-gram model and their mixture, and with
 * fit != 0 first fits the mixing weights on it (fti_ngram_fit): seqs[i][0..lens[i]) are separate
 * texts (token ids of the model's vocabulary), each scored as fti_session_token_logprobs scores it
 * (every token from the second), the n-gram seeing all the tokens before each one within its text.
 * st receives the figures per token (nats). Errors: FTI_ERR_INVALID (NULL, the n-gram's vocabulary
 * is not the model's, or no token to score), those of fti_session_eval, NOMEM. */
FTIDEF fti_result fti_ngram_eval_session(fti_ngram *m, fti_session *s, const int32_t *const *seqs,
                                         const size_t *lens, size_t n_seqs, int fit,
                                         fti_ngram_fit_stats *st, fti_error *err);

#ifdef __cplusplus
}
#endif
#endif /* FTI_INFER_H */
