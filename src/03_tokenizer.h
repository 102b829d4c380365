/* === tokenizer: byte-level BPE (pre-tokenizers, encode, decode, train, file formats) === */
/*
 * A byte-level BPE tokenizer in the style of GPT-2 and tiktoken. The vocabulary holds the 256
 * single bytes, the merged tokens and the special tokens. Every byte string round-trips:
 * decode(encode(x)) == x, including invalid UTF-8.
 *
 *   text ──special-token split──▶ segments ──pre-tokenizer──▶ pre-tokens ──BPE merge──▶ ids
 *
 *   special tokens  with FTI_TOK_ALLOW_SPECIAL, the literal strings of special tokens (e.g.
 *                   "<|endoftext|>") become their ids and are never split or merged; without it
 *                   (the default, right for untrusted text) they are ordinary text.
 *   pre-tokenizer   splits a segment into pre-tokens exactly like the split regex of GPT-2
 *                   (r50k_base), cl100k_base or o200k_base, written by hand (no regex engine),
 *                   with Unicode classes from generated tables. Invalid UTF-8 bytes each count
 *                   as one punctuation-like character (neither letter, number nor space).
 *   BPE             the pre-token's bytes start as single-byte parts; the adjacent pair whose
 *                   concatenation has the lowest rank is merged (leftmost on ties) until no pair
 *                   has a rank. This is tiktoken's rule; ids equal tiktoken's.
 *
 * Ids are uint32_t. `rank` orders merges; for tiktoken files rank == id. Some vocabularies have
 * holes (ids with no token, e.g. cl100k_base 100256): decoding a hole is an error.
 *
 * Formats read: fti's own file (versioned, SHA-256 checksummed, see docs/tokenizer.md),
 * tiktoken ".tiktoken" rank files, GPT-2 encoder.json + vocab.bpe, and GGUF tokenizer
 * metadata (tokens in GPT-2 byte-to-unicode form plus "left right" merges). Formats written:
 * fti's file and the GGUF metadata. A tokenizer is identified by the SHA-256 of its canonical
 * fti serialization, whatever file it was loaded from.
 *
 * Training (fti_bpe_trainer): texts are pre-tokenized and collapsed into unique words with
 * counts (in parallel over an fti_pool), then merges are learned with incremental pair counts
 * and a priority queue; ties break on the smaller (left id, right id), so results are
 * deterministic and independent of the thread count.
 */
#ifndef FTI_TOKENIZER_H
#define FTI_TOKENIZER_H

#include "00_base.h"
#include "01_threads.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Named limits for untrusted tokenizer files (override before including the implementation). */
#ifndef FTI_TOK_MAX_VOCAB
#define FTI_TOK_MAX_VOCAB (1u << 22) /* tokens (ids) in one vocabulary */
#endif
#ifndef FTI_TOK_MAX_TOKEN_BYTES
#define FTI_TOK_MAX_TOKEN_BYTES 1024 /* bytes of one token */
#endif
#ifndef FTI_TOK_MAX_FILE_BYTES
#define FTI_TOK_MAX_FILE_BYTES ((size_t)256 << 20) /* size of one tokenizer file */
#endif

/* Pre-tokenizers (split patterns). */
typedef enum fti_pretok {
    FTI_PRETOK_DEFAULT = 0, /* when loading: guess from the file; when training: GPT2 */
    FTI_PRETOK_GPT2 = 1,    /* GPT-2 / r50k_base / p50k_base */
    FTI_PRETOK_CL100K = 2,  /* cl100k_base (also Llama 3's pattern) */
    FTI_PRETOK_O200K = 3    /* o200k_base */
} fti_pretok;

/* Name of a pre-tokenizer ("gpt2", "cl100k", "o200k"; "default" for 0, "?" otherwise), and the
 * parse of such a name (also accepts "r50k", "cl100k_base", "o200k_base", "gpt-2"); returns
 * FTI_PRETOK_DEFAULT for an unknown name. Thread safety: any thread. */
FTIDEF const char *fti_pretok_name(fti_pretok kind);
FTIDEF fti_pretok fti_pretok_parse(const char *name);

/* Returns the end of the pre-token that starts at byte `pos` of text[0..len) (pos < len), i.e.
 * one step of the split regex; > pos always. Text is bytes (invalid UTF-8 allowed).
 * Thread safety: any thread. */
FTIDEF size_t fti_pretok_next(fti_pretok kind, const char *text, size_t len, size_t pos);

/* --- the tokenizer -------------------------------------------------------------------------- */

typedef struct fti_tokenizer fti_tokenizer;

/* GGUF token types (llama.cpp's numbers). Byte tokens are NORMAL, as in GPT-2 style vocabs. */
typedef enum fti_token_type {
    FTI_TOKEN_NONE = 0,         /* a hole: no token has this id */
    FTI_TOKEN_NORMAL = 1,
    FTI_TOKEN_UNKNOWN = 2,
    FTI_TOKEN_CONTROL = 3,      /* special tokens */
    FTI_TOKEN_USER_DEFINED = 4,
    FTI_TOKEN_UNUSED = 5,
    FTI_TOKEN_BYTE = 6
} fti_token_type;

/* Options for loading. Zero (or NULL) = defaults for every field. */
typedef struct fti_tokenizer_opts {
    /* Pre-tokenizer. DEFAULT: the one stored in an fti file; for a .tiktoken file the one of a
     * known rank file (recognised by SHA-256: r50k/gpt2, cl100k_base, o200k_base) else GPT2;
     * GPT-2 encoder.json: GPT2. */
    fti_pretok pretok;
    /* Extra special tokens for files that carry none (.tiktoken, encoder.json): NUL-terminated
     * strings given ids after the largest id. When special is NULL, a known tiktoken rank file
     * gets its standard special tokens (as tiktoken), and GPT-2 files get "<|endoftext|>". */
    const char *const *special;
    size_t n_special;
    int no_default_special;  /* 1: no standard special tokens at all */
    size_t max_file_bytes;   /* 0 = FTI_TOK_MAX_FILE_BYTES */
} fti_tokenizer_opts;

/* Loads a tokenizer file, sniffing its format: fti's own file, a .tiktoken rank file, or a
 * GPT-2 encoder.json (then vocab.bpe must sit in the same directory). Errors name the file and
 * the problem ("r50k.tiktoken: line 12: bad base64"); a GGUF model file is FTI_ERR_UNSUPPORTED
 * (fti_engine_tokenizer reads its tokenizer). *out is owned by the caller
 * (fti_tokenizer_free). Thread safety: any thread. */
FTIDEF fti_result fti_tokenizer_load(const char *path, const fti_tokenizer_opts *opts,
                                     fti_tokenizer **out, fti_error *err);
/* Same from memory: fti's own format or .tiktoken text (sniffed). `name` (may be NULL) is used
 * in error messages and for recognising known files. The data is copied. */
FTIDEF fti_result fti_tokenizer_load_mem(const void *data, size_t len, const char *name,
                                         const fti_tokenizer_opts *opts, fti_tokenizer **out,
                                         fti_error *err);
/* GPT-2 encoder.json + vocab.bpe (files, or memory). */
FTIDEF fti_result fti_tokenizer_load_gpt2(const char *encoder_json_path, const char *vocab_bpe_path,
                                          const fti_tokenizer_opts *opts, fti_tokenizer **out,
                                          fti_error *err);
FTIDEF fti_result fti_tokenizer_load_gpt2_mem(const void *encoder_json, size_t encoder_len,
                                              const void *vocab_bpe, size_t vocab_len,
                                              const fti_tokenizer_opts *opts, fti_tokenizer **out,
                                              fti_error *err);
/* Frees a tokenizer (NULL is fine). Thread safety: one thread per object (no encode running). */
FTIDEF void fti_tokenizer_free(fti_tokenizer *tok);

/* Writes fti's own format atomically (temp file, fsync, rename), or appends it to a buffer
 * (FTI_ERR_NOMEM if it cannot grow). Thread safety: any thread. */
FTIDEF fti_result fti_tokenizer_save(const fti_tokenizer *tok, const char *path, fti_error *err);
FTIDEF fti_result fti_tokenizer_serialize(const fti_tokenizer *tok, fti_buf *out);

/* Adds a special (CONTROL) token with the next free id, or returns the id it already has as a
 * special token. Fails with FTI_ERR_EXISTS if the bytes are an ordinary token, FTI_ERR_INVALID
 * for empty or too long strings. Changes the tokenizer's SHA-256 id.
 * Thread safety: none (no encode may run on tok at the same time). */
FTIDEF fti_result fti_tokenizer_add_special(fti_tokenizer *tok, const char *text, size_t len,
                                            uint32_t *id_out);

/* --- queries (Thread safety: any thread) ---------------------------------------------------- */

/* Number of ids (largest id + 1, holes included). */
FTIDEF size_t fti_tokenizer_vocab_size(const fti_tokenizer *tok);
FTIDEF fti_pretok fti_tokenizer_pretok(const fti_tokenizer *tok);
/* The bytes of a token (not NUL-terminated) and their length; NULL for a hole or a bad id. */
FTIDEF const char *fti_tokenizer_token(const fti_tokenizer *tok, uint32_t id, size_t *len);
FTIDEF fti_token_type fti_tokenizer_token_type(const fti_tokenizer *tok, uint32_t id);
/* Id of the token with exactly these bytes (ordinary or special), or -1. */
FTIDEF int64_t fti_tokenizer_find(const fti_tokenizer *tok, const char *bytes, size_t len);
/* Id of a special token by its text ("<|endoftext|>"), or -1. */
FTIDEF int64_t fti_tokenizer_special_id(const fti_tokenizer *tok, const char *text);
/* Number of special tokens and the id of the i-th (in id order). */
FTIDEF size_t fti_tokenizer_n_special(const fti_tokenizer *tok);
FTIDEF uint32_t fti_tokenizer_special_at(const fti_tokenizer *tok, size_t i);
/* Id of "<|endoftext|>" or -1. */
FTIDEF int64_t fti_tokenizer_eot_id(const fti_tokenizer *tok);
/* SHA-256 of the canonical fti serialization: raw digest and 64 hex chars + NUL. */
FTIDEF void fti_tokenizer_sha256(const fti_tokenizer *tok, unsigned char digest[32]);
FTIDEF void fti_tokenizer_id_hex(const fti_tokenizer *tok, char hex[65]);

/* --- encoding ------------------------------------------------------------------------------- */

/* A growable id array; zero-initialise. Encoders append to it. Free with fti_tokens_free (which
 * leaves it empty and reusable). Thread safety: one thread per object. */
typedef struct fti_tokens {
    uint32_t *ids;
    size_t len;
    size_t cap;
} fti_tokens;
FTIDEF fti_result fti_tokens_push(fti_tokens *t, uint32_t id);
FTIDEF void fti_tokens_free(fti_tokens *t);

/* Encode flags. */
#define FTI_TOK_ALLOW_SPECIAL 1u /* match special-token strings (trusted text only) */

/* Appends the ids of text[0..len) to out. Single-threaded. Returns FTI_OK, FTI_ERR_NOMEM (out
 * keeps what it had), FTI_ERR_INVALID (NULL tok/out, or text NULL with len > 0).
 * Thread safety: any thread (tok is read-only; many threads may encode with one tokenizer). */
FTIDEF fti_result fti_tokenizer_encode(const fti_tokenizer *tok, const char *text, size_t len,
                                       unsigned flags, fti_tokens *out);
/* The same over a pool: large texts are cut at pre-token boundaries into chunks encoded in
 * parallel. The ids are identical to fti_tokenizer_encode's for any thread count.
 * Thread safety: one thread submits to a pool at a time. */
FTIDEF fti_result fti_tokenizer_encode_pool(const fti_tokenizer *tok, fti_pool *pool,
                                            const char *text, size_t len, unsigned flags,
                                            fti_tokens *out);
/* Encodes n separate texts (e.g. documents), texts[i] of lens[i] bytes, into outs[i] (appended),
 * in parallel over the pool (NULL = serial). On an error some outs may be incomplete.
 * Thread safety: one thread submits to a pool at a time. */
FTIDEF fti_result fti_tokenizer_encode_batch(const fti_tokenizer *tok, fti_pool *pool,
                                             const char *const *texts, const size_t *lens,
                                             size_t n, unsigned flags, fti_tokens *outs);
/* Number of tokens text would encode to (*n_tokens = 0 on error). Thread safety: any thread. */
FTIDEF fti_result fti_tokenizer_count(const fti_tokenizer *tok, const char *text, size_t len,
                                      unsigned flags, size_t *n_tokens);

/* --- decoding ------------------------------------------------------------------------------- */

/* Appends the bytes of ids[0..n) to out. Fails with FTI_ERR_INVALID on an id out of range or a
 * hole (out keeps the bytes of the ids before it) or FTI_ERR_NOMEM. Special tokens decode to
 * their text. Thread safety: any thread. */
FTIDEF fti_result fti_tokenizer_decode(const fti_tokenizer *tok, const uint32_t *ids, size_t n,
                                       fti_buf *out);

/* Streaming decode for printing tokens as they are generated: never emits part of a UTF-8
 * character. Bytes of an incomplete (so far valid) sequence are held until it completes; an
 * invalid sequence is emitted as U+FFFD when `repair` is set, else as its raw bytes.
 * Zero-initialise (set repair if wanted), push ids, then flush at the end (emits a held
 * incomplete tail, as U+FFFD when repair). Thread safety: one thread per object. */
typedef struct fti_detok {
    unsigned char held[4];
    size_t n_held;
    int repair;
} fti_detok;
FTIDEF fti_result fti_detok_push(fti_detok *d, const fti_tokenizer *tok, uint32_t id,
                                 fti_buf *out);
FTIDEF void fti_detok_flush(fti_detok *d, fti_buf *out);

/* --- GGUF tokenizer metadata ---------------------------------------------------------------- */

/* The tokenizer as GGUF stores it (tokenizer.ggml.*): model "gpt2", pre ("gpt-2" for GPT2,
 * "llama-bpe" for CL100K, "gpt-4o" for O200K), one string per id in GPT-2 byte-to-unicode form
 * (holes become "[PAD<id>]" of type UNUSED), token types (NORMAL for normal and byte tokens,
 * CONTROL for special tokens), and merges "left right" in rank order (each merged token's split
 * into the two parts BPE joins last). Strings are NUL-terminated; all memory is owned by the
 * struct. eos/bos are "<|endoftext|>" when present, else -1. */
typedef struct fti_tokenizer_gguf {
    const char *model;
    const char *pre;
    size_t n_tokens;
    char **tokens;
    int32_t *token_types;
    size_t n_merges;
    char **merges;
    int64_t bos_id;
    int64_t eos_id;
    void *mem_;  /* private */
} fti_tokenizer_gguf;
/* Fills *out (FTI_ERR_NOMEM leaves it zeroed); free with fti_tokenizer_gguf_free (NULL and a
 * zeroed struct are fine). Thread safety: any thread (out: one thread per object). */
FTIDEF fti_result fti_tokenizer_gguf_make(const fti_tokenizer *tok, fti_tokenizer_gguf *out);
FTIDEF void fti_tokenizer_gguf_free(fti_tokenizer_gguf *g);
/* Builds a tokenizer from GGUF metadata (e.g. read from a model file): tokens[i] (len
 * token_lens[i], byte-to-unicode form), types[i] (may be NULL = NORMAL), merges[k] "left right"
 * (len merge_lens[k]). pre is the GGUF pre name (NULL = "gpt-2"); CONTROL and USER_DEFINED tokens
 * become special tokens. Hostile input gives FTI_ERR_FORMAT with a message, never a crash.
 * Thread safety: any thread. */
FTIDEF fti_result fti_tokenizer_from_gguf(const char *const *tokens, const size_t *token_lens,
                                          const int32_t *types, size_t n_tokens,
                                          const char *const *merges, const size_t *merge_lens,
                                          size_t n_merges, const char *pre, fti_tokenizer **out,
                                          fti_error *err);

/* --- training ------------------------------------------------------------------------------- */

/* Progress: merges learned so far out of the target (called about 100 times per train, on the
 * training thread). */
typedef void (*fti_bpe_progress_fn)(void *user, size_t merges_done, size_t merges_total);

/* Options for training. Zero (or NULL) = defaults for every field. */
typedef struct fti_bpe_train_opts {
    fti_pretok pretok;      /* DEFAULT = GPT2 (GGUF pre "gpt-2") */
    size_t vocab_size;      /* 256 bytes + merges + special tokens; 0 = 4096 */
    uint64_t min_frequency; /* stop when the best pair occurs fewer times; 0 = 2 */
    /* Special tokens (NUL-terminated) given the last ids. NULL = {"<|endoftext|>"} unless
     * no_default_special. Their strings in training text are cut out, never learned. */
    const char *const *special;
    size_t n_special;
    int no_default_special;
    size_t max_word_bytes;  /* longer pre-tokens are cut into pieces this long; 0 = 256 */
    fti_pool *pool;         /* counting threads; NULL = single-threaded */
    fti_bpe_progress_fn progress;
    void *progress_user;
} fti_bpe_train_opts;

typedef struct fti_bpe_trainer fti_bpe_trainer;

/* Statistics of a trainer (after adding texts / after training). */
typedef struct fti_bpe_train_stats {
    uint64_t n_bytes;      /* text bytes added */
    uint64_t n_words;      /* pre-tokens counted */
    uint64_t n_unique;     /* unique pre-tokens */
    size_t n_merges;       /* merges learned by train */
    uint64_t last_count;   /* frequency of the last merge */
} fti_bpe_train_stats;

/* Creates a trainer; the opts are copied (the pool pointer is kept and must outlive it).
 * FTI_ERR_INVALID (no message: this call takes no fti_error) for an unknown pretok, a
 * vocab_size below 256 + the number of special tokens or above FTI_TOK_MAX_VOCAB, or a special
 * token that is empty or longer than FTI_TOK_MAX_TOKEN_BYTES. Thread safety: one thread per
 * object. */
FTIDEF fti_result fti_bpe_trainer_create(const fti_bpe_train_opts *opts, fti_bpe_trainer **out);
/* Adds one document's text (any bytes; copied). Texts are buffered and counted in parallel
 * batches of 16 MiB; pre-tokens never cross documents. FTI_ERR_NOMEM marks the trainer failed.
 * Thread safety: one thread per object. */
FTIDEF fti_result fti_bpe_trainer_add(fti_bpe_trainer *t, const char *text, size_t len);
/* Learns the merges and returns the tokenizer (owned by the caller). The trainer may be freed
 * afterwards; calling add or train again after train gives FTI_ERR_INVALID. Memory: about
 * 40 bytes per symbol of the unique words plus the pair table. Thread safety: one thread per
 * object. */
FTIDEF fti_result fti_bpe_trainer_train(fti_bpe_trainer *t, fti_tokenizer **out, fti_error *err);
/* Counts so far (zeros for NULL). Thread safety: one thread per object. */
FTIDEF void fti_bpe_trainer_stats(const fti_bpe_trainer *t, fti_bpe_train_stats *stats);
/* Frees the trainer and its buffered text (NULL is fine). Thread safety: one thread per object. */
FTIDEF void fti_bpe_trainer_free(fti_bpe_trainer *t);

#ifdef __cplusplus
}
#endif
#endif /* FTI_TOKENIZER_H */
