/* fti.h — Feature / Training / Inference for an LLM twin, in one C header. v0.1.0
 *
 * A small language model trained on one person's own writing, end to end in C99 with only libc,
 * libm and (optionally) pthreads: a feature pipeline (ingest, clean, validate, dedupe, chunk,
 * byte-level BPE, versioned feature store), a training pipeline (a Llama-style transformer with
 * hand-written backward, AdamW, exact resume, model registry) and an inference pipeline (GGUF model
 * files by mmap, quantized kernels, sampling, retrieval-augmented prompts, serving, monitoring).
 *
 * USE
 *   In exactly one C or C++ file:
 *       #define FTI_IMPLEMENTATION
 *       #include "fti.h"
 *   Everywhere else just #include "fti.h". Link with -lm, and -lpthread unless FTI_NO_THREADS.
 *
 * QUICK START (hashing a file, the smallest useful call)
 *       unsigned char digest[32]; char hex[65]; fti_error err;
 *       if (fti_sha256_file("notes.txt", digest, &err) != FTI_OK) { puts(err.msg); return 1; }
 *       fti_sha256_hex(digest, hex); puts(hex);
 *
 * CONTENTS (parts, in order; each uses only the parts before it)
 *   00 base      results and errors, memory, reader, files, SHA-256, UTF-8, JSON, RNG, clock
 *   01 threads   worker pool with deterministic parallel-for
 *   02+          kernels, tokenizer, feature store, model, GGUF, training, inference,
 *                monitoring, server (as they land; see docs/architecture.md)
 *
 * OPTIONS (define before including the implementation; all default to off/unset)
 *   FTI_IMPLEMENTATION   emit the implementation in this translation unit
 *   FTI_STATIC           make every function static (private copy per translation unit)
 *   FTIDEF               storage class of public functions (default extern, or static)
 *   FTI_MALLOC(n), FTI_REALLOC(p,n), FTI_FREE(p)
 *                        the allocator; define all three or none (default malloc/realloc/free)
 *   FTI_ASSERT(x)        assertion for fti's own bugs, never for input (default assert)
 *   FTI_NO_THREADS       no pthreads: every pool runs serially
 *   FTI_NO_SIMD          scalar kernels only (also implied by compilers without intrinsics)
 *   FTI_NO_AVX512        no AVX-512 kernel tables (AVX2 stays); at run time the environment
 *                        variable FTI_ISA=scalar|avx2|avx512|neon forces a lower table
 *   FTI_NO_DOTPROD       no aarch64 SDOT table (plain NEON stays)
 *   FTI_NO_MMAP          read files into memory instead of mapping them
 *   FTI_TESTING          expose internal fti__ functions and fault-injection hooks to tests
 *
 * ERRORS
 *   Every fallible call returns fti_result (FTI_OK == 0, errors < 0; fti_result_str() names them).
 *   Calls that read input also take an optional fti_error* whose message names the file, the
 *   field and the numbers at fault. There is no global or thread-local "last error".
 *
 * THREADING
 *   No global mutable state. Each declaration ends with its thread-safety note: "any thread",
 *   "one thread per object" or "none". Thread pools and RNG states belong to objects.
 *
 * LIMITS
 *   Inputs are untrusted: every parser is bounds-checked and has named, overridable limits
 *   (e.g. FTI_JSON_MAX_DEPTH). Files are written atomically (temp file, fsync, rename).
 *
 * LICENSE: at the end of this file (MIT or public domain, your choice).
 */
#ifndef FTI_H
#define FTI_H

/* ---- begin src/00_base.h ---- */
/* === base: types, results, errors, memory, reader, I/O, hashing, UTF-8, JSON, RNG, clock === */
/*
 * The base part is what every other part stands on. Nothing in it knows about language models:
 *
 *   results   every fallible call returns an fti_result (FTI_OK = 0, errors < 0); calls that parse
 *             input also fill an optional fti_error whose message names the file, field and numbers.
 *   memory    every allocation goes through FTI_MALLOC/FTI_REALLOC/FTI_FREE; aligned blocks (64 B)
 *             and a bump arena that can live in caller-supplied memory (embedded targets).
 *   reader    one bounds-checked little-endian reader with a sticky error, used by every parser.
 *   I/O       whole-file reads with a size cap, read-only maps (mmap or read() fallback), atomic
 *             writes (temp file in the same directory, fsync, rename, fsync of the directory),
 *             directory walks and path helpers. All system calls go through one thin layer so
 *             tests can inject EIO, ENOSPC, EINTR and short writes.
 *   hashing   SHA-256 (content ids, agrees with sha256sum) and a fast 64-bit hash for tables.
 *   UTF-8     validate, decode, encode, repair to U+FFFD.
 *   JSON      a limited DOM reader that never reads out of bounds, and a writer with escaping.
 *   misc      growable byte buffer, seedable RNG with normal sampling, monotonic clock,
 *             log callback type, and a terminal progress bar for programs.
 */
#ifndef FTI_BASE_H
#define FTI_BASE_H

#define FTI_VERSION_MAJOR 0
#define FTI_VERSION_MINOR 1
#define FTI_VERSION_PATCH 0
#define FTI_VERSION_STRING "0.1.0"
#define FTI_VERSION_NUMBER (FTI_VERSION_MAJOR * 10000 + FTI_VERSION_MINOR * 100 + FTI_VERSION_PATCH)

/* The implementation needs POSIX declarations (fsync, mmap, clock_gettime) even under -std=c99.
 * Feature macros only work before the first system header: in the file that defines
 * FTI_IMPLEMENTATION, include fti.h first (or define _POSIX_C_SOURCE 200809L yourself). */
#if defined(FTI_IMPLEMENTATION) && !defined(_WIN32)
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#endif

#include <stddef.h>
#include <stdint.h>

#ifndef FTIDEF
#ifdef FTI_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define FTIDEF static __attribute__((unused))
#else
#define FTIDEF static
#endif
#else
#define FTIDEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* --- results ------------------------------------------------------------------------------ */

/* One list drives the enum and fti_result_str(). */
#define FTI_RESULT_LIST(X)                                                 \
    X(FTI_OK, 0, "ok")                                                     \
    X(FTI_ERR_INVALID, -1, "invalid argument")                             \
    X(FTI_ERR_NOMEM, -2, "out of memory")                                  \
    X(FTI_ERR_IO, -3, "input/output error")                                \
    X(FTI_ERR_NOT_FOUND, -4, "not found")                                  \
    X(FTI_ERR_FORMAT, -5, "malformed input")                               \
    X(FTI_ERR_LIMIT, -6, "input exceeds a limit")                          \
    X(FTI_ERR_UNSUPPORTED, -7, "not supported")                            \
    X(FTI_ERR_CHECKSUM, -8, "checksum mismatch")                           \
    X(FTI_ERR_EXISTS, -9, "already exists")                                \
    X(FTI_ERR_BUSY, -10, "busy or locked")                                 \
    X(FTI_ERR_CANCELLED, -11, "cancelled")                                 \
    X(FTI_ERR_NUMERIC, -12, "non-finite number")                           \
    X(FTI_ERR_NOSPACE, -13, "no space left on device")                     \
    X(FTI_ERR_MISMATCH, -14, "inputs do not match")

typedef enum fti_result {
#define FTI__RESULT_ENUM(name, value, text) name = value,
    FTI_RESULT_LIST(FTI__RESULT_ENUM)
#undef FTI__RESULT_ENUM
    FTI_RESULT_MIN_ = -15
} fti_result;

/* Short English text for a result ("out of memory"); never NULL. Thread safety: any thread. */
FTIDEF const char *fti_result_str(fti_result r);

/* An error report. Parsers fill it with a message that names file, field and numbers, e.g.
 * "model.gguf: tensor blk.3.attn_q ends at 1049600 > file size 1000000". Pass NULL to skip it.
 * The caller owns it (usually on the stack). Thread safety: one thread per object. */
#define FTI_ERROR_MSG_MAX 320
typedef struct fti_error {
    fti_result code;
    char msg[FTI_ERROR_MSG_MAX];
} fti_error;

/* Sets err (if not NULL) to code and a printf-style message; returns code, so a caller can
 * write `return fti_error_set(err, FTI_ERR_FORMAT, "%s: bad magic", path);`.
 * Thread safety: one thread per err. */
FTIDEF fti_result fti_error_set(fti_error *err, fti_result code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Clears err to FTI_OK with an empty message. NULL is fine. */
FTIDEF void fti_error_clear(fti_error *err);
/* Prefixes err's message with "prefix: " (for adding a file name at a higher level). */
FTIDEF void fti_error_prefix(fti_error *err, const char *prefix);

/* --- memory --------------------------------------------------------------------------------- */

/* Thin wrappers over FTI_MALLOC/FTI_REALLOC/FTI_FREE. fti_malloc(0) returns a valid pointer.
 * Thread safety: as the configured allocator (libc's is any thread). */
FTIDEF void *fti_malloc(size_t n_bytes);
FTIDEF void *fti_calloc(size_t count, size_t size); /* overflow-checked, zeroed */
FTIDEF void *fti_realloc(void *p, size_t n_bytes);
FTIDEF void fti_free(void *p);
/* Allocation aligned to `align` (a power of two, at least sizeof(void*)); release with
 * fti_aligned_free. Returns NULL on failure or overflow. */
FTIDEF void *fti_aligned_alloc(size_t n_bytes, size_t align);
FTIDEF void fti_aligned_free(void *p);
/* Duplicates n bytes as a NUL-terminated string; free with fti_free. */
FTIDEF char *fti_strndup(const char *s, size_t n);
FTIDEF char *fti_strdup(const char *s);

/* Overflow-checked size arithmetic: return 1 and store the result, or 0 on overflow. */
FTIDEF int fti_size_add(size_t a, size_t b, size_t *out);
FTIDEF int fti_size_mul(size_t a, size_t b, size_t *out);

/* A bump arena. With caller memory (`mem` != NULL) it never allocates; with mem == NULL it
 * allocates `cap` bytes once. Allocations are aligned to `align` (power of two, 0 = 16).
 * fti_arena_alloc returns NULL when full. fti_arena_free releases owned memory only.
 * Thread safety: one thread per object. */
typedef struct fti_arena {
    unsigned char *base;
    size_t cap;
    size_t used;
    int owned;
} fti_arena;
FTIDEF fti_result fti_arena_init(fti_arena *a, void *mem, size_t cap);
FTIDEF void *fti_arena_alloc(fti_arena *a, size_t n_bytes, size_t align);
FTIDEF void fti_arena_reset(fti_arena *a);
FTIDEF void fti_arena_free(fti_arena *a);

/* A growable byte buffer. Zero-initialise to start. Appends keep a NUL after the data so
 * data can be used as a C string, but len is the truth. A failed growth sets `oom` (sticky)
 * and further appends do nothing: check oom once at the end. Thread safety: one per object. */
typedef struct fti_buf {
    char *data;
    size_t len;
    size_t cap;
    int oom;
} fti_buf;
FTIDEF int fti_buf_reserve(fti_buf *b, size_t extra);
FTIDEF void fti_buf_append(fti_buf *b, const void *p, size_t n);
FTIDEF void fti_buf_puts(fti_buf *b, const char *s);
FTIDEF void fti_buf_putc(fti_buf *b, char c);
FTIDEF void fti_buf_printf(fti_buf *b, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
FTIDEF void fti_buf_free(fti_buf *b);

/* --- reader (all binary parsing goes through it) --------------------------------------------- */

/* A bounds-checked cursor. Every get checks the remaining bytes; when short it returns 0 (or
 * NULL) and sets the sticky `err`. Check err once per record. Values are little-endian. */
typedef struct fti_reader {
    const unsigned char *p;
    size_t len;
    size_t pos;
    int err;
} fti_reader;
FTIDEF fti_reader fti_reader_make(const void *p, size_t len);
FTIDEF uint8_t fti_read_u8(fti_reader *r);
FTIDEF uint16_t fti_read_u16(fti_reader *r);
FTIDEF uint32_t fti_read_u32(fti_reader *r);
FTIDEF uint64_t fti_read_u64(fti_reader *r);
FTIDEF int32_t fti_read_i32(fti_reader *r);
FTIDEF int64_t fti_read_i64(fti_reader *r);
FTIDEF float fti_read_f32(fti_reader *r);
FTIDEF double fti_read_f64(fti_reader *r);
/* Returns a pointer to the next n bytes and advances, or NULL (and err) if fewer remain. */
FTIDEF const void *fti_read_bytes(fti_reader *r, size_t n);
FTIDEF size_t fti_reader_left(const fti_reader *r);
/* Little-endian stores for writers. */
FTIDEF void fti_store_u16(void *dst, uint16_t v);
FTIDEF void fti_store_u32(void *dst, uint32_t v);
FTIDEF void fti_store_u64(void *dst, uint64_t v);
FTIDEF void fti_store_f32(void *dst, float v);
FTIDEF uint32_t fti_load_u32(const void *src);
FTIDEF uint64_t fti_load_u64(const void *src);

/* --- files ----------------------------------------------------------------------------------- */

/* Reads a whole file into a new buffer (freed with fti_free), NUL-terminated for convenience.
 * Fails with FTI_ERR_LIMIT if the file is larger than max_bytes (0 = no cap). */
FTIDEF fti_result fti_file_read(const char *path, size_t max_bytes, void **out_data,
                                size_t *out_len, fti_error *err);

/* A read-only view of a whole file: mmap where available, else (or under FTI_NO_MMAP) a heap
 * copy filled with read(). data is valid until fti_map_close. An empty file maps to data != NULL,
 * len 0. Thread safety: the view may be read from any thread. */
typedef struct fti_map {
    const void *data;
    size_t len;
    int is_mmap;
} fti_map;
FTIDEF fti_result fti_map_open(fti_map *m, const char *path, fti_error *err);
FTIDEF void fti_map_close(fti_map *m);

/* An atomic file writer: data goes to "<path>.tmp.<pid>.<n>" in the same directory; commit
 * fsyncs it, renames it over path and fsyncs the directory. Any failure (including a failed
 * fsync, which is never retried) leaves the old content of path untouched and no temp file.
 * abort (or a failed commit) removes the temp file. Thread safety: one thread per object. */
typedef struct fti_afile {
    int fd;
    fti_result status; /* sticky: first failure of a write */
    char *path;
    char *tmp_path;
} fti_afile;
FTIDEF fti_result fti_afile_open(fti_afile *f, const char *path, fti_error *err);
FTIDEF fti_result fti_afile_write(fti_afile *f, const void *data, size_t n_bytes);
FTIDEF fti_result fti_afile_commit(fti_afile *f, fti_error *err);
FTIDEF void fti_afile_abort(fti_afile *f);
/* One-shot: write data atomically to path. */
FTIDEF fti_result fti_file_write_atomic(const char *path, const void *data, size_t n_bytes,
                                        fti_error *err);

/* Creates a directory and its parents (like mkdir -p); existing directories are fine. */
FTIDEF fti_result fti_mkdirs(const char *path, fti_error *err);
/* 1 if path exists (file or directory), else 0. */
FTIDEF int fti_path_exists(const char *path);
FTIDEF int fti_path_is_dir(const char *path);
/* fsyncs a directory so renames inside it are durable. */
FTIDEF fti_result fti_dir_sync(const char *dir, fti_error *err);
/* Removes a file; a missing file is not an error. */
FTIDEF fti_result fti_file_remove(const char *path, fti_error *err);
/* Joins a and b with one '/', into a new string (fti_free). NULL on allocation failure. */
FTIDEF char *fti_path_join(const char *a, const char *b);
/* Pointer to the last path component (after the last '/'), and to its extension
 * (after the last '.' of the last component; "" if none). */
FTIDEF const char *fti_path_base(const char *path);
FTIDEF const char *fti_path_ext(const char *path);

/* Walks a file or a directory tree, calling fn for each regular file in byte-wise sorted order
 * (deterministic). Hidden entries (names starting with '.') are skipped; symlinks are not
 * followed. fn returns FTI_OK to go on, anything else stops the walk and is returned. */
typedef fti_result (*fti_walk_fn)(void *user, const char *path, uint64_t size_bytes);
FTIDEF fti_result fti_walk(const char *root, fti_walk_fn fn, void *user, fti_error *err);

/* --- hashing --------------------------------------------------------------------------------- */

typedef struct fti_sha256 {
    uint32_t h[8];
    uint64_t n_bytes;
    unsigned char block[64];
    size_t block_len;
} fti_sha256;
FTIDEF void fti_sha256_init(fti_sha256 *s);
FTIDEF void fti_sha256_update(fti_sha256 *s, const void *data, size_t n_bytes);
FTIDEF void fti_sha256_final(fti_sha256 *s, unsigned char out[32]);
/* One-shot digest, and the digest as 64 lowercase hex chars plus NUL. */
FTIDEF void fti_sha256_buf(const void *data, size_t n_bytes, unsigned char out[32]);
FTIDEF void fti_sha256_hex(const unsigned char digest[32], char hex[65]);
FTIDEF fti_result fti_sha256_file(const char *path, unsigned char out[32], fti_error *err);
/* Fast non-cryptographic 64-bit hash for hash tables (stable across platforms and versions). */
FTIDEF uint64_t fti_hash64(const void *data, size_t n_bytes, uint64_t seed);

/* --- UTF-8 ----------------------------------------------------------------------------------- */

/* Decodes one code point from s[0..n). Returns the number of bytes consumed (>= 1 when n > 0)
 * and stores the code point; an invalid or truncated sequence (overlong, surrogate, > U+10FFFF)
 * consumes its maximal invalid prefix (at least 1 byte) and stores U+FFFD with *ok = 0. */
FTIDEF size_t fti_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp, int *ok);
/* Encodes cp (surrogates and > U+10FFFF become U+FFFD) into out; returns 1..4. */
FTIDEF size_t fti_utf8_encode(uint32_t cp, unsigned char out[4]);
/* Returns the length of the longest valid prefix (n when all valid). */
FTIDEF size_t fti_utf8_valid_prefix(const unsigned char *s, size_t n);
/* Appends s to out with each invalid sequence replaced by U+FFFD. Returns the number of
 * replacements made. */
FTIDEF size_t fti_utf8_repair(const unsigned char *s, size_t n, fti_buf *out);
/* Number of trailing bytes of s[0..n) that start an incomplete (but so far valid) sequence:
 * for streaming output that must not split a character. */
FTIDEF size_t fti_utf8_incomplete_tail(const unsigned char *s, size_t n);

/* --- JSON ------------------------------------------------------------------------------------ */

/* A JSON DOM parsed into one owned block. Strings are unescaped (UTF-8, NUL-terminated, and may
 * contain NUL: use len). Numbers keep their double value; `is_int` tells whether the literal was
 * an integer that fits int64 exactly (then `i` holds it). Object members keep file order. */
typedef enum fti_json_type {
    FTI_JSON_NULL = 1,
    FTI_JSON_FALSE,
    FTI_JSON_TRUE,
    FTI_JSON_NUMBER,
    FTI_JSON_STRING,
    FTI_JSON_ARRAY,
    FTI_JSON_OBJECT
} fti_json_type;

typedef struct fti_json {
    fti_json_type type;
    int is_int;
    size_t len;               /* string: bytes; array/object: number of children */
    const char *str;          /* string value */
    double num;
    int64_t i;
    const char *key;          /* member name when the parent is an object, else NULL */
    size_t key_len;
    struct fti_json *child;   /* first child (array/object) */
    struct fti_json *next;    /* next sibling */
} fti_json;

typedef struct fti_json_opts {
    size_t max_depth;      /* 0 = 64 */
    size_t max_string;     /* bytes of one string, 0 = 16 MiB */
    size_t max_nodes;      /* 0 = 16 M */
    int allow_trailing;    /* accept bytes after the value (for streaming readers) */
} fti_json_opts;

typedef struct fti_json_doc fti_json_doc;
/* Parses text[0..len) (RFC 8259: one value, whitespace around). On success *out owns all nodes.
 * Errors name the byte offset: "offset 17: bad escape \\q". `consumed` (optional) gets the
 * offset after the value. Thread safety: any thread; the doc is read-only after. */
FTIDEF fti_result fti_json_parse(const char *text, size_t len, const fti_json_opts *opts,
                                 fti_json_doc **out, size_t *consumed, fti_error *err);
FTIDEF const fti_json *fti_json_root(const fti_json_doc *doc);
FTIDEF void fti_json_free(fti_json_doc *doc);
/* Member lookup by key (first match) or NULL; element i of an array or NULL. */
FTIDEF const fti_json *fti_json_get(const fti_json *obj, const char *key);
FTIDEF const fti_json *fti_json_at(const fti_json *arr, size_t i);
/* Typed getters with a fallback when missing or of another type. */
FTIDEF const char *fti_json_get_str(const fti_json *obj, const char *key, const char *fallback);
FTIDEF double fti_json_get_num(const fti_json *obj, const char *key, double fallback);
FTIDEF int64_t fti_json_get_int(const fti_json *obj, const char *key, int64_t fallback);

/* A JSON writer into an fti_buf: it places commas and colons itself. Depth <= 64.
 * Numbers that are not finite are written as null. Thread safety: one thread per object. */
typedef struct fti_jw {
    fti_buf *out;
    int depth;
    unsigned char first[64]; /* 1 while the container at this depth has no element yet */
    int pretty;              /* indent with two spaces */
} fti_jw;
FTIDEF void fti_jw_init(fti_jw *w, fti_buf *out, int pretty);
FTIDEF void fti_jw_obj_begin(fti_jw *w);
FTIDEF void fti_jw_obj_end(fti_jw *w);
FTIDEF void fti_jw_arr_begin(fti_jw *w);
FTIDEF void fti_jw_arr_end(fti_jw *w);
FTIDEF void fti_jw_key(fti_jw *w, const char *key);
FTIDEF void fti_jw_keyn(fti_jw *w, const char *key, size_t n); /* key may hold NUL */
FTIDEF void fti_jw_str(fti_jw *w, const char *s);
FTIDEF void fti_jw_strn(fti_jw *w, const char *s, size_t n);
FTIDEF void fti_jw_num(fti_jw *w, double v);
FTIDEF void fti_jw_int(fti_jw *w, int64_t v);
FTIDEF void fti_jw_bool(fti_jw *w, int v);
FTIDEF void fti_jw_null(fti_jw *w);
/* Appends s as a quoted, escaped JSON string to b (invalid UTF-8 becomes U+FFFD). */
FTIDEF void fti_json_escape(fti_buf *b, const char *s, size_t n);

/* --- RNG, clock, logging, progress ----------------------------------------------------------- */

/* A small seedable generator (PCG-style, 64-bit state). The whole state is the struct: copy it
 * to checkpoint it. Thread safety: one thread per object. */
typedef struct fti_rng {
    uint64_t state;
    uint64_t inc;
} fti_rng;
FTIDEF void fti_rng_seed(fti_rng *r, uint64_t seed, uint64_t stream);
FTIDEF uint32_t fti_rng_u32(fti_rng *r);
FTIDEF uint64_t fti_rng_u64(fti_rng *r);
FTIDEF uint32_t fti_rng_below(fti_rng *r, uint32_t bound); /* uniform in [0, bound), unbiased */
FTIDEF float fti_rng_float(fti_rng *r);                    /* uniform in [0, 1) */
FTIDEF double fti_rng_double(fti_rng *r);                  /* uniform in [0, 1) */
FTIDEF float fti_rng_normal(fti_rng *r);                   /* standard normal */

/* Monotonic time in nanoseconds (arbitrary origin), and wall-clock seconds since the epoch. */
FTIDEF uint64_t fti_time_ns(void);
FTIDEF double fti_time_wall(void);
/* UTC time as "YYYY-MM-DDTHH:MM:SSZ" into out (at least 21 bytes). */
FTIDEF void fti_time_iso8601(double wall_seconds, char out[32]);

/* Log levels and callback. Library code never prints: objects take an optional fti_log_fn in
 * their opts and report through it. */
typedef enum fti_log_level {
    FTI_LOG_DEFAULT = 0,
    FTI_LOG_DEBUG,
    FTI_LOG_INFO,
    FTI_LOG_WARN,
    FTI_LOG_ERROR
} fti_log_level;
typedef void (*fti_log_fn)(void *user, fti_log_level level, const char *msg);

/* A progress bar for programs (the library itself never draws one): on a terminal it redraws
 * one line at most 10 times a second with count, rate and ETA; otherwise it prints one summary
 * line at fti_progress_end. `stream` is a FILE* (usually stderr), kept as void* so this header
 * need not include stdio.h. total 0 means unknown. Thread safety: one thread per object. */
typedef struct fti_progress {
    void *stream;
    char label[48];
    char unit[16];
    uint64_t total;
    uint64_t done;
    uint64_t t_start_ns;
    uint64_t t_last_ns;
    int is_tty;
    int drawn;
} fti_progress;
FTIDEF void fti_progress_begin(fti_progress *p, void *stream, const char *label, const char *unit,
                               uint64_t total);
FTIDEF void fti_progress_update(fti_progress *p, uint64_t done, const char *extra);
FTIDEF void fti_progress_end(fti_progress *p, const char *extra);

/* Environment helpers: integer value of an environment variable, or fallback. */
FTIDEF long fti_env_long(const char *name, long fallback);
/* Number of online CPUs (at least 1). */
FTIDEF int fti_cpu_count(void);

#ifdef __cplusplus
}
#endif
#endif /* FTI_BASE_H */
/* ---- end src/00_base.h ---- */
/* ---- begin src/01_threads.h ---- */
/* === threads: a persistent worker pool with a deterministic parallel-for === */
/*
 * A pool owns n-1 worker threads; the calling thread is worker 0, so a pool of 1 runs everything
 * inline. fti_pool_for splits [0, n) into one contiguous chunk per thread, always the same chunks
 * for the same (n, n_threads): kernels that split over output rows and reduce in a fixed order
 * give bit-identical results for any thread count. Workers spin briefly, then sleep on a
 * condition variable, so back-to-back calls (one per matmul in decoding) stay cheap.
 *
 * Under FTI_NO_THREADS (or where pthreads is missing) the pool has one thread and runs serially.
 * The pool does not nest: a task must not call fti_pool_for on the same pool.
 */
#ifndef FTI_THREADS_H
#define FTI_THREADS_H

/* #include "00_base.h" (amalgamated) */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fti_pool fti_pool;

/* Work function: process items [begin, end) as worker `thread` (0 .. n_threads-1). */
typedef void (*fti_pool_fn)(void *ctx, size_t begin, size_t end, int thread);

/* Creates a pool of n_threads (0 = $FTI_THREADS if set, else the number of CPUs; capped at 256).
 * Returns NULL on failure (out of memory, thread creation failed). Free with fti_pool_free.
 * Thread safety: one thread submits work at a time. */
FTIDEF fti_pool *fti_pool_create(int n_threads);
FTIDEF void fti_pool_free(fti_pool *pool);
/* Thread count of a pool; NULL counts as 1. */
FTIDEF int fti_pool_threads(const fti_pool *pool);

/* Runs fn over [0, n) split into min(n_threads, n) contiguous chunks and waits for all of them.
 * `grain` (>= 1) is the smallest chunk worth a thread: fewer threads are used when n/grain is
 * small. Chunk t is [n*t/k, n*(t+1)/k) for k chunks. A NULL pool runs fn(ctx, 0, n, 0) inline. */
FTIDEF void fti_pool_for(fti_pool *pool, size_t n, size_t grain, fti_pool_fn fn, void *ctx);

/* Runs fn once per thread: fn(ctx, t, t+1, t) for t in [0, n_threads). */
FTIDEF void fti_pool_each(fti_pool *pool, fti_pool_fn fn, void *ctx);

/* A mutex usable by other parts (server, registry); a no-op under FTI_NO_THREADS. */
typedef struct fti_mutex {
    void *impl;
} fti_mutex;
FTIDEF fti_result fti_mutex_init(fti_mutex *m);
FTIDEF void fti_mutex_lock(fti_mutex *m);
FTIDEF void fti_mutex_unlock(fti_mutex *m);
FTIDEF void fti_mutex_destroy(fti_mutex *m);

#ifdef __cplusplus
}
#endif
#endif /* FTI_THREADS_H */
/* ---- end src/01_threads.h ---- */
/* ---- begin src/02_kernels.h ---- */
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

/* #include "00_base.h" (amalgamated) */
/* #include "01_threads.h" (amalgamated) */

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

/* "f32", "f16", "q4_0", "q8_0", "bf16", or NULL for a type kernels don't know. */
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
 * (fti_dtype_row_bytes(t, n) bytes). Q8_0: d = max|x|/127, q = round(x/d). Q4_0 (as ggml):
 * m = the element of largest magnitude (with its sign), d = m/-8, q = min(15, trunc(x/d + 8.5)).
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
/* ---- end src/02_kernels.h ---- */
/* ---- begin src/03_tokenizer.h ---- */
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

/* #include "00_base.h" (amalgamated) */
/* #include "01_threads.h" (amalgamated) */

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
 * the problem ("r50k.tiktoken: line 12: bad base64"). *out is owned by the caller
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
 * Thread safety: one thread per object. */
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
/* ---- end src/03_tokenizer.h ---- */
/* ---- begin src/05_model.h ---- */
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

/* #include "00_base.h" (amalgamated) */
/* #include "01_threads.h" (amalgamated) */

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
 * n_heads, head dim even, n_heads divisible by n_kv_heads, sizes without overflow. */
FTIDEF fti_result fti_model_config_resolve(fti_model_config *cfg, fti_error *err);
/* Named presets: "tiny" (tests, ~100k params), "small", "stories15M" (dim 288, 6 layers, 6 heads,
 * hidden 768, context 256), "stories42M", "stories110M". vocab_size is left for the caller to set
 * (0 means: keep the preset's default 4096). FTI_ERR_NOT_FOUND for unknown names. */
FTIDEF fti_result fti_model_preset(const char *name, fti_model_config *cfg);
/* Number of tensors in the layout (tied models have no `output`). */
FTIDEF size_t fti_model_n_tensors(const fti_model_config *cfg);
/* Fills the i-th tensor's info (0 <= i < n_tensors) in layout order: token_embd, then each layer's
 * attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down, then
 * output_norm, output. Returns the total parameter count when info is NULL and i == (size_t)-1. */
FTIDEF size_t fti_model_tensor_info(const fti_model_config *cfg, size_t i, fti_tensor_info *info);
/* Total number of parameters (elements of the contiguous f32 block). */
FTIDEF size_t fti_model_n_params(const fti_model_config *cfg);

#ifdef __cplusplus
}
#endif
#endif /* FTI_MODEL_H */
/* ---- end src/05_model.h ---- */

#endif /* FTI_H */

#ifdef FTI_IMPLEMENTATION
#ifndef FTI_IMPLEMENTATION_DONE
#define FTI_IMPLEMENTATION_DONE

/* ---- begin src/00_base.c ---- */
/* === base: implementation === */
/* #include "00_base.h" (amalgamated) */

#if defined(FTI_MALLOC) || defined(FTI_REALLOC) || defined(FTI_FREE)
#if !defined(FTI_MALLOC) || !defined(FTI_REALLOC) || !defined(FTI_FREE)
#error "fti: define all of FTI_MALLOC, FTI_REALLOC and FTI_FREE, or none of them"
#endif
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#ifndef FTI_NO_MMAP
#include <sys/mman.h>
#endif
#ifndef FTI_ASSERT
#include <assert.h>
#define FTI_ASSERT(x) assert(x)
#endif

#ifndef FTI_MALLOC
#define FTI_MALLOC(sz) malloc(sz)
#define FTI_REALLOC(p, sz) realloc(p, sz)
#define FTI_FREE(p) free(p)
#endif

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

/* Named limits (override by defining them before the implementation). */
#ifndef FTI_JSON_MAX_DEPTH
#define FTI_JSON_MAX_DEPTH 64
#endif
#ifndef FTI_JSON_MAX_STRING
#define FTI_JSON_MAX_STRING ((size_t)16 << 20)
#endif
#ifndef FTI_JSON_MAX_NODES
#define FTI_JSON_MAX_NODES ((size_t)16 << 20)
#endif
#ifndef FTI_WALK_MAX_DEPTH
#define FTI_WALK_MAX_DEPTH 64
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FTI__UNUSED __attribute__((unused))
#else
#define FTI__UNUSED
#endif

/* === base: results and errors === */

FTIDEF const char *fti_result_str(fti_result r) {
    switch (r) {
#define FTI__RESULT_CASE(name, value, text) \
    case name:                              \
        return text;
        FTI_RESULT_LIST(FTI__RESULT_CASE)
#undef FTI__RESULT_CASE
    default:
        return "unknown error";
    }
}

FTIDEF fti_result fti_error_set(fti_error *err, fti_result code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

FTIDEF void fti_error_clear(fti_error *err) {
    if (err) {
        err->code = FTI_OK;
        err->msg[0] = 0;
    }
}

FTIDEF void fti_error_prefix(fti_error *err, const char *prefix) {
    size_t np, nm;
    if (!err || !prefix) return;
    np = strlen(prefix);
    if (np > FTI_ERROR_MSG_MAX - 3) np = FTI_ERROR_MSG_MAX - 3;
    nm = strlen(err->msg);
    if (nm > FTI_ERROR_MSG_MAX - 3 - np) nm = FTI_ERROR_MSG_MAX - 3 - np;
    memmove(err->msg + np + 2, err->msg, nm);
    memcpy(err->msg, prefix, np);
    err->msg[np] = ':';
    err->msg[np + 1] = ' ';
    err->msg[np + 2 + nm] = 0;
}

/* === base: memory === */

FTIDEF void *fti_malloc(size_t n_bytes) { return FTI_MALLOC(n_bytes ? n_bytes : 1); }

FTIDEF void *fti_calloc(size_t count, size_t size) {
    size_t n;
    void *p;
    if (!fti_size_mul(count, size, &n)) return NULL;
    p = fti_malloc(n);
    if (p) memset(p, 0, n);
    return p;
}

FTIDEF void *fti_realloc(void *p, size_t n_bytes) { return FTI_REALLOC(p, n_bytes ? n_bytes : 1); }

FTIDEF void fti_free(void *p) {
    if (p) FTI_FREE(p);
}

/* The aligned block keeps the raw pointer just before the aligned address. */
FTIDEF void *fti_aligned_alloc(size_t n_bytes, size_t align) {
    size_t total;
    unsigned char *raw;
    uintptr_t a;
    if (align < sizeof(void *)) align = sizeof(void *);
    if (align & (align - 1)) return NULL;
    if (!fti_size_add(n_bytes, align + sizeof(void *), &total)) return NULL;
    raw = (unsigned char *)FTI_MALLOC(total);
    if (!raw) return NULL;
    a = ((uintptr_t)(raw + sizeof(void *)) + (align - 1)) & ~(uintptr_t)(align - 1);
    memcpy((void *)(a - sizeof(void *)), &raw, sizeof raw);
    /* cppcheck-suppress memleak ; raw is stored just before the block, freed by fti_aligned_free */
    return (void *)a;
}

FTIDEF void fti_aligned_free(void *p) {
    void *raw;
    if (!p) return;
    memcpy(&raw, (unsigned char *)p - sizeof(void *), sizeof raw);
    FTI_FREE(raw);
}

FTIDEF char *fti_strndup(const char *s, size_t n) {
    char *d;
    if (!s || n == SIZE_MAX) return NULL;
    d = (char *)fti_malloc(n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    return d;
}

FTIDEF char *fti_strdup(const char *s) { return s ? fti_strndup(s, strlen(s)) : NULL; }

FTIDEF int fti_size_add(size_t a, size_t b, size_t *out) {
    if (a > SIZE_MAX - b) return 0;
    *out = a + b;
    return 1;
}

FTIDEF int fti_size_mul(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

FTIDEF fti_result fti_arena_init(fti_arena *a, void *mem, size_t cap) {
    if (!a) return FTI_ERR_INVALID;
    a->used = 0;
    a->cap = cap;
    a->owned = mem == NULL;
    a->base = (unsigned char *)(mem ? mem : fti_aligned_alloc(cap, 64));
    if (!a->base) {
        a->cap = 0;
        a->owned = 0;
        return FTI_ERR_NOMEM;
    }
    return FTI_OK;
}

FTIDEF void *fti_arena_alloc(fti_arena *a, size_t n_bytes, size_t align) {
    uintptr_t start, p;
    size_t off;
    if (!a || !a->base) return NULL;
    if (align == 0) align = 16;
    if (align & (align - 1)) return NULL;
    start = (uintptr_t)a->base + a->used;
    p = (start + (align - 1)) & ~(uintptr_t)(align - 1);
    off = (size_t)(p - (uintptr_t)a->base);
    if (off > a->cap || n_bytes > a->cap - off) return NULL;
    a->used = off + n_bytes;
    return (void *)p;
}

FTIDEF void fti_arena_reset(fti_arena *a) {
    if (a) a->used = 0;
}

FTIDEF void fti_arena_free(fti_arena *a) {
    if (!a) return;
    if (a->owned) fti_aligned_free(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
    a->owned = 0;
}

FTIDEF int fti_buf_reserve(fti_buf *b, size_t extra) {
    size_t need, cap;
    char *p;
    if (b->oom) return 0;
    if (!fti_size_add(b->len, extra, &need) || !fti_size_add(need, 1, &need)) {
        b->oom = 1;
        return 0;
    }
    if (need <= b->cap) return 1;
    cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    p = (char *)fti_realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

FTIDEF void fti_buf_append(fti_buf *b, const void *p, size_t n) {
    if (!fti_buf_reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

FTIDEF void fti_buf_puts(fti_buf *b, const char *s) { fti_buf_append(b, s, strlen(s)); }

FTIDEF void fti_buf_putc(fti_buf *b, char c) { fti_buf_append(b, &c, 1); }

FTIDEF void fti_buf_printf(fti_buf *b, const char *fmt, ...) {
    va_list ap;
    int n;
    char small[256];
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        fti_buf_append(b, small, (size_t)n);
        return;
    }
    if (!fti_buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

FTIDEF void fti_buf_free(fti_buf *b) {
    if (!b) return;
    fti_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

/* === base: reader === */

FTIDEF fti_reader fti_reader_make(const void *p, size_t len) {
    fti_reader r;
    r.p = (const unsigned char *)p;
    r.len = p ? len : 0;
    r.pos = 0;
    r.err = 0;
    return r;
}

FTIDEF const void *fti_read_bytes(fti_reader *r, size_t n) {
    const void *p;
    if (r->err || r->pos > r->len || n > r->len - r->pos) {
        r->err = 1;
        return NULL;
    }
    p = r->p + r->pos;
    r->pos += n;
    return p;
}

FTIDEF size_t fti_reader_left(const fti_reader *r) {
    return r->err || r->pos > r->len ? 0 : r->len - r->pos;
}

FTIDEF uint8_t fti_read_u8(fti_reader *r) {
    const unsigned char *p = (const unsigned char *)fti_read_bytes(r, 1);
    return p ? p[0] : 0;
}

FTIDEF uint16_t fti_read_u16(fti_reader *r) {
    const unsigned char *p = (const unsigned char *)fti_read_bytes(r, 2);
    return p ? (uint16_t)(p[0] | (p[1] << 8)) : 0;
}

FTIDEF uint32_t fti_load_u32(const void *src) {
    const unsigned char *p = (const unsigned char *)src;
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

FTIDEF uint64_t fti_load_u64(const void *src) {
    const unsigned char *p = (const unsigned char *)src;
    return (uint64_t)fti_load_u32(p) | ((uint64_t)fti_load_u32(p + 4) << 32);
}

FTIDEF uint32_t fti_read_u32(fti_reader *r) {
    const void *p = fti_read_bytes(r, 4);
    return p ? fti_load_u32(p) : 0;
}

FTIDEF uint64_t fti_read_u64(fti_reader *r) {
    const void *p = fti_read_bytes(r, 8);
    return p ? fti_load_u64(p) : 0;
}

FTIDEF int32_t fti_read_i32(fti_reader *r) {
    uint32_t u = fti_read_u32(r);
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

FTIDEF int64_t fti_read_i64(fti_reader *r) {
    uint64_t u = fti_read_u64(r);
    int64_t v;
    memcpy(&v, &u, 8);
    return v;
}

FTIDEF float fti_read_f32(fti_reader *r) {
    uint32_t u = fti_read_u32(r);
    float v;
    memcpy(&v, &u, 4);
    return v;
}

FTIDEF double fti_read_f64(fti_reader *r) {
    uint64_t u = fti_read_u64(r);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

FTIDEF void fti_store_u16(void *dst, uint16_t v) {
    unsigned char *p = (unsigned char *)dst;
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

FTIDEF void fti_store_u32(void *dst, uint32_t v) {
    unsigned char *p = (unsigned char *)dst;
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

FTIDEF void fti_store_u64(void *dst, uint64_t v) {
    fti_store_u32(dst, (uint32_t)v);
    fti_store_u32((unsigned char *)dst + 4, (uint32_t)(v >> 32));
}

FTIDEF void fti_store_f32(void *dst, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    fti_store_u32(dst, u);
}

/* === base: the I/O layer (every system call that touches files goes through here) === */
/*
 * Under FTI_TESTING a fault can be injected into the k-th call of chosen operations: fail with an
 * errno (EIO, ENOSPC, EINTR, ...), once or persistently, or make a write/read short. Callers
 * retry EINTR and loop on short transfers, so those two must not change any result.
 */
enum {
    FTI__IO_OPEN = 1,
    FTI__IO_READ = 2,
    FTI__IO_WRITE = 4,
    FTI__IO_FSYNC = 8,
    FTI__IO_RENAME = 16,
    FTI__IO_CLOSE = 32,
    FTI__IO_MKDIR = 64,
    FTI__IO_ALL = 127
};

#ifdef FTI_TESTING
typedef struct fti__io_fault_state {
    int ops;        /* which operations count (FTI__IO_* mask); 0 = off */
    long at;        /* fail the at-th counted call (1-based) */
    long count;     /* counted calls so far */
    int err;        /* errno to fail with; 0 with short_io = a short transfer */
    int persistent; /* also fail every later counted call */
    int short_io;   /* transfer at most half (at least 1 byte) instead of failing */
    int crash;      /* _exit(77) instead of failing: a crash just before that step */
    long fired;     /* how many faults were injected */
} fti__io_fault_state;
static fti__io_fault_state fti__io_fault;

FTI__UNUSED static void fti__io_fault_set(int ops, long at, int err, int persistent, int short_io) {
    memset(&fti__io_fault, 0, sizeof fti__io_fault);
    fti__io_fault.ops = ops;
    fti__io_fault.at = at;
    fti__io_fault.err = err;
    fti__io_fault.persistent = persistent;
    fti__io_fault.short_io = short_io;
}

/* Crash (the process ends with _exit(77)) just before the at-th counted call of ops. */
FTI__UNUSED static void fti__io_crash_set(int ops, long at) {
    fti__io_fault_set(ops, at, 0, 0, 0);
    fti__io_fault.crash = 1;
}

/* 0: proceed; 1: fail with errno set; 2: short transfer. */
static int fti__io_check(int op) {
    fti__io_fault_state *f = &fti__io_fault;
    if (!(f->ops & op)) return 0;
    f->count++;
    if (f->count == f->at || (f->persistent && f->count > f->at)) {
        f->fired++;
        if (f->crash) _exit(77);
        if (f->short_io && (op == FTI__IO_WRITE || op == FTI__IO_READ)) return 2;
        errno = f->err ? f->err : EIO;
        return 1;
    }
    return 0;
}
#define FTI__IO_CHECK(op, fail_value)        \
    do {                                     \
        int fti__c = fti__io_check(op);      \
        if (fti__c == 1) return (fail_value); \
        if (fti__c == 2 && n > 1) n /= 2;    \
    } while (0)
#define FTI__IO_CHECK_NOSIZE(op, fail_value)  \
    do {                                      \
        if (fti__io_check(op) == 1) return (fail_value); \
    } while (0)
#else
#define FTI__IO_CHECK(op, fail_value) ((void)0)
#define FTI__IO_CHECK_NOSIZE(op, fail_value) ((void)0)
#endif

static int fti__sys_open(const char *path, int flags, int mode) {
    FTI__IO_CHECK_NOSIZE(FTI__IO_OPEN, -1);
    return open(path, flags | O_CLOEXEC, mode);
}

static long fti__sys_read(int fd, void *p, size_t n) {
    FTI__IO_CHECK(FTI__IO_READ, -1);
    return (long)read(fd, p, n);
}

static long fti__sys_write(int fd, const void *p, size_t n) {
    FTI__IO_CHECK(FTI__IO_WRITE, -1);
    return (long)write(fd, p, n);
}

static int fti__sys_fsync(int fd) {
    FTI__IO_CHECK_NOSIZE(FTI__IO_FSYNC, -1);
    return fsync(fd);
}

static int fti__sys_rename(const char *from, const char *to) {
    FTI__IO_CHECK_NOSIZE(FTI__IO_RENAME, -1);
    return rename(from, to);
}

static int fti__sys_close(int fd) {
    FTI__IO_CHECK_NOSIZE(FTI__IO_CLOSE, -1);
    return close(fd);
}

static int fti__sys_mkdir(const char *path) {
    FTI__IO_CHECK_NOSIZE(FTI__IO_MKDIR, -1);
    return mkdir(path, 0755);
}

static fti_result fti__errno_result(int e) {
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return FTI_ERR_NOT_FOUND;
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return FTI_ERR_NOSPACE;
    case ENOMEM:
        return FTI_ERR_NOMEM;
    case EEXIST:
        return FTI_ERR_EXISTS;
    default:
        return FTI_ERR_IO;
    }
}

/* Writes all n bytes, retrying EINTR and short writes. Returns 0 or -1 with errno. */
static int fti__write_all(int fd, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        long w = fti__sys_write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes unless EOF comes first; returns bytes read or -1 with errno. */
static long fti__read_full(int fd, void *data, size_t n) {
    unsigned char *p = (unsigned char *)data;
    size_t got = 0;
    while (got < n) {
        size_t chunk = n - got > ((size_t)1 << 30) ? ((size_t)1 << 30) : n - got;
        long r = fti__sys_read(fd, p + got, chunk);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (long)got;
}

/* === base: files === */

FTIDEF fti_result fti_file_read(const char *path, size_t max_bytes, void **out_data,
                                size_t *out_len, fti_error *err) {
    int fd;
    struct stat st;
    size_t cap, len = 0;
    char *buf;
    if (!path || !out_data) return fti_error_set(err, FTI_ERR_INVALID, "fti_file_read: no path");
    *out_data = NULL;
    if (out_len) *out_len = 0;
    fd = fti__sys_open(path, O_RDONLY, 0);
    if (fd < 0)
        return fti_error_set(err, fti__errno_result(errno), "%s: cannot open: %s", path,
                             strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fti_error_set(err, FTI_ERR_IO, "%s: not a regular file", path);
    }
    if (max_bytes && (uint64_t)st.st_size > (uint64_t)max_bytes) {
        close(fd);
        return fti_error_set(err, FTI_ERR_LIMIT, "%s: %lld bytes is over the limit of %zu bytes",
                             path, (long long)st.st_size, max_bytes);
    }
    if ((uint64_t)st.st_size >= (uint64_t)SIZE_MAX) {
        close(fd);
        return fti_error_set(err, FTI_ERR_LIMIT, "%s: too large for this machine", path);
    }
    /* The size may change while reading: read until EOF, growing, within the cap. */
    cap = (size_t)st.st_size + 1;
    buf = (char *)fti_malloc(cap + 1);
    if (!buf) {
        close(fd);
        return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory for %zu bytes", path, cap);
    }
    for (;;) {
        long r = fti__read_full(fd, buf + len, cap - len);
        char *nb;
        if (r < 0) {
            int e = errno;
            fti_free(buf);
            close(fd);
            return fti_error_set(err, FTI_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        len += (size_t)r;
        if (len < cap) break;
        if (max_bytes && len > max_bytes) {
            fti_free(buf);
            close(fd);
            return fti_error_set(err, FTI_ERR_LIMIT, "%s: over the limit of %zu bytes", path,
                                 max_bytes);
        }
        if (cap > SIZE_MAX / 2 - 1) {
            fti_free(buf);
            close(fd);
            return fti_error_set(err, FTI_ERR_LIMIT, "%s: too large", path);
        }
        nb = (char *)fti_realloc(buf, cap * 2 + 1);
        if (!nb) {
            fti_free(buf);
            close(fd);
            return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
        }
        buf = nb;
        cap *= 2;
    }
    close(fd);
    if (max_bytes && len > max_bytes) {
        fti_free(buf);
        return fti_error_set(err, FTI_ERR_LIMIT, "%s: over the limit of %zu bytes", path,
                             max_bytes);
    }
    buf[len] = 0;
    *out_data = buf;
    if (out_len) *out_len = len;
    return FTI_OK;
}

FTIDEF fti_result fti_map_open(fti_map *m, const char *path, fti_error *err) {
    int fd;
    struct stat st;
    if (!m || !path) return fti_error_set(err, FTI_ERR_INVALID, "fti_map_open: no path");
    m->data = NULL;
    m->len = 0;
    m->is_mmap = 0;
    fd = fti__sys_open(path, O_RDONLY, 0);
    if (fd < 0)
        return fti_error_set(err, fti__errno_result(errno), "%s: cannot open: %s", path,
                             strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fti_error_set(err, FTI_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size >= (uint64_t)SIZE_MAX) {
        close(fd);
        return fti_error_set(err, FTI_ERR_LIMIT, "%s: too large to map", path);
    }
    m->len = (size_t)st.st_size;
#ifndef FTI_NO_MMAP
    if (m->len > 0) {
        void *p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            close(fd);
            m->data = p;
            m->is_mmap = 1;
            return FTI_OK;
        }
        /* fall back to reading */
    }
#endif
    {
        void *buf = fti_malloc(m->len + 1);
        long r;
        if (!buf) {
            close(fd);
            m->len = 0;
            return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
        }
        r = fti__read_full(fd, buf, m->len);
        if (r < 0 || (size_t)r != m->len) {
            int e = errno;
            fti_free(buf);
            close(fd);
            m->len = 0;
            return fti_error_set(err, FTI_ERR_IO, "%s: read failed: %s", path,
                                 r < 0 ? strerror(e) : "file shrank");
        }
        ((char *)buf)[m->len] = 0;
        close(fd);
        m->data = buf;
        return FTI_OK;
    }
}

FTIDEF void fti_map_close(fti_map *m) {
    if (!m || !m->data) return;
#ifndef FTI_NO_MMAP
    if (m->is_mmap) {
        munmap((void *)m->data, m->len);
    } else
#endif
    {
        fti_free((void *)m->data);
    }
    m->data = NULL;
    m->len = 0;
    m->is_mmap = 0;
}

/* Directory part of path ("." when none), as a new string. */
static char *fti__path_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return fti_strdup(".");
    if (slash == path) return fti_strdup("/");
    return fti_strndup(path, (size_t)(slash - path));
}

FTIDEF fti_result fti_dir_sync(const char *dir, fti_error *err) {
    int fd = fti__sys_open(dir, O_RDONLY, 0);
    if (fd < 0)
        return fti_error_set(err, fti__errno_result(errno), "%s: cannot open directory: %s", dir,
                             strerror(errno));
    if (fti__sys_fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
        int e = errno;
        close(fd);
        return fti_error_set(err, fti__errno_result(e), "%s: fsync of directory failed: %s", dir,
                             strerror(e));
    }
    close(fd);
    return FTI_OK;
}

FTIDEF fti_result fti_afile_open(fti_afile *f, const char *path, fti_error *err) {
    size_t n;
    int attempt;
    if (!f || !path || !*path) return fti_error_set(err, FTI_ERR_INVALID, "fti_afile_open: no path");
    f->fd = -1;
    f->status = FTI_OK;
    f->path = fti_strdup(path);
    n = strlen(path) + 64;
    f->tmp_path = (char *)fti_malloc(n);
    if (!f->path || !f->tmp_path) {
        fti_free(f->path);
        fti_free(f->tmp_path);
        f->path = f->tmp_path = NULL;
        f->status = FTI_ERR_NOMEM;
        return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
    }
    for (attempt = 0; attempt < 100; attempt++) {
        snprintf(f->tmp_path, n, "%s.tmp.%ld.%llu", path, (long)getpid(),
                 (unsigned long long)(fti_time_ns() % 1000000007ull) + (unsigned long long)attempt);
        f->fd = fti__sys_open(f->tmp_path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (f->fd >= 0 || errno != EEXIST) break;
    }
    if (f->fd < 0) {
        int e = errno;
        fti_result r = fti__errno_result(e);
        if (r == FTI_ERR_EXISTS) r = FTI_ERR_IO;
        fti_error_set(err, r, "%s: cannot create temp file: %s", path, strerror(e));
        fti_free(f->path);
        fti_free(f->tmp_path);
        f->path = f->tmp_path = NULL;
        f->status = r;
        return r;
    }
    return FTI_OK;
}

FTIDEF fti_result fti_afile_write(fti_afile *f, const void *data, size_t n_bytes) {
    if (!f) return FTI_ERR_INVALID;
    if (f->status != FTI_OK) return f->status;
    if (f->fd < 0) return f->status = FTI_ERR_INVALID;
    if (fti__write_all(f->fd, data, n_bytes) != 0) f->status = fti__errno_result(errno);
    return f->status;
}

FTIDEF void fti_afile_abort(fti_afile *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp_path) unlink(f->tmp_path);
    fti_free(f->path);
    fti_free(f->tmp_path);
    f->path = f->tmp_path = NULL;
}

FTIDEF fti_result fti_afile_commit(fti_afile *f, fti_error *err) {
    fti_result r;
    char *dir;
    if (!f || !f->path) return fti_error_set(err, FTI_ERR_INVALID, "fti_afile_commit: not open");
    if (f->status != FTI_OK) {
        r = fti_error_set(err, f->status, "%s: write failed: %s", f->path,
                          fti_result_str(f->status));
        fti_afile_abort(f);
        return r;
    }
    /* A failed fsync means the data may be lost: fail, never retry into "success". */
    if (fti__sys_fsync(f->fd) != 0) {
        int e = errno;
        r = fti_error_set(err, fti__errno_result(e), "%s: fsync failed: %s", f->path, strerror(e));
        fti_afile_abort(f);
        return r;
    }
    if (fti__sys_close(f->fd) != 0) {
        int e = errno;
        f->fd = -1;
        r = fti_error_set(err, fti__errno_result(e), "%s: close failed: %s", f->path, strerror(e));
        fti_afile_abort(f);
        return r;
    }
    f->fd = -1;
    dir = fti__path_dir(f->path);
    if (!dir) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", f->path);
        fti_afile_abort(f);
        return r;
    }
    if (fti__sys_rename(f->tmp_path, f->path) != 0) {
        int e = errno;
        r = fti_error_set(err, fti__errno_result(e), "%s: rename failed: %s", f->path, strerror(e));
        fti_free(dir);
        fti_afile_abort(f);
        return r;
    }
    r = fti_dir_sync(dir, err);
    fti_free(dir);
    fti_free(f->path);
    fti_free(f->tmp_path);
    f->path = f->tmp_path = NULL;
    return r;
}

FTIDEF fti_result fti_file_write_atomic(const char *path, const void *data, size_t n_bytes,
                                        fti_error *err) {
    fti_afile f;
    fti_result r = fti_afile_open(&f, path, err);
    if (r != FTI_OK) return r;
    fti_afile_write(&f, data, n_bytes);
    return fti_afile_commit(&f, err);
}

FTIDEF int fti_path_exists(const char *path) {
    struct stat st;
    return path && stat(path, &st) == 0;
}

FTIDEF int fti_path_is_dir(const char *path) {
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

FTIDEF fti_result fti_mkdirs(const char *path, fti_error *err) {
    char *p;
    size_t i, n;
    if (!path || !*path) return fti_error_set(err, FTI_ERR_INVALID, "fti_mkdirs: empty path");
    p = fti_strdup(path);
    if (!p) return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
    n = strlen(p);
    for (i = 1; i <= n; i++) {
        if (i == n || p[i] == '/') {
            char saved = p[i];
            p[i] = 0;
            if (!fti_path_is_dir(p) && fti__sys_mkdir(p) != 0 && errno != EEXIST) {
                int e = errno;
                fti_result r = fti_error_set(err, fti__errno_result(e),
                                             "%s: cannot create directory: %s", p, strerror(e));
                fti_free(p);
                return r;
            }
            if (!fti_path_is_dir(p)) {
                fti_result r = fti_error_set(err, FTI_ERR_IO, "%s: exists and is not a directory",
                                             p);
                fti_free(p);
                return r;
            }
            p[i] = saved;
        }
    }
    fti_free(p);
    return FTI_OK;
}

FTIDEF fti_result fti_file_remove(const char *path, fti_error *err) {
    if (unlink(path) != 0 && errno != ENOENT)
        return fti_error_set(err, fti__errno_result(errno), "%s: cannot remove: %s", path,
                             strerror(errno));
    return FTI_OK;
}

FTIDEF char *fti_path_join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b), n;
    char *s;
    while (na > 1 && a[na - 1] == '/') na--;
    while (nb > 0 && b[0] == '/') {
        b++;
        nb--;
    }
    n = na + 1 + nb + 1;
    s = (char *)fti_malloc(n);
    if (!s) return NULL;
    memcpy(s, a, na);
    if (na > 0 && a[na - 1] != '/') s[na++] = '/';
    memcpy(s + na, b, nb);
    s[na + nb] = 0;
    return s;
}

FTIDEF const char *fti_path_base(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

FTIDEF const char *fti_path_ext(const char *path) {
    const char *base = fti_path_base(path);
    const char *dot = strrchr(base, '.');
    return dot && dot != base ? dot + 1 : base + strlen(base);
}

static int fti__cmp_cstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static fti_result fti__walk(const char *path, int depth, fti_walk_fn fn, void *user,
                            fti_error *err) {
    struct stat st;
    DIR *d;
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0, i;
    fti_result r = FTI_OK;
    if (lstat(path, &st) != 0)
        return fti_error_set(err, fti__errno_result(errno), "%s: %s", path, strerror(errno));
    if (S_ISREG(st.st_mode)) return fn(user, path, (uint64_t)st.st_size);
    if (!S_ISDIR(st.st_mode)) return FTI_OK; /* symlinks, devices, sockets: skipped */
    if (depth > FTI_WALK_MAX_DEPTH)
        return fti_error_set(err, FTI_ERR_LIMIT, "%s: directories nested deeper than %d", path,
                             FTI_WALK_MAX_DEPTH);
    d = opendir(path);
    if (!d)
        return fti_error_set(err, fti__errno_result(errno), "%s: cannot open directory: %s", path,
                             strerror(errno));
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **nn = (char **)fti_realloc(names, nc * sizeof *names);
            if (!nn) {
                r = FTI_ERR_NOMEM;
                break;
            }
            names = nn;
            cap = nc;
        }
        names[n] = fti_path_join(path, e->d_name);
        if (!names[n]) {
            r = FTI_ERR_NOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (r == FTI_OK && n > 1) qsort(names, n, sizeof *names, fti__cmp_cstr);
    if (r != FTI_OK) fti_error_set(err, r, "%s: out of memory while listing", path);
    for (i = 0; i < n; i++) {
        if (r == FTI_OK) r = fti__walk(names[i], depth + 1, fn, user, err);
        fti_free(names[i]);
    }
    fti_free(names);
    return r;
}

FTIDEF fti_result fti_walk(const char *root, fti_walk_fn fn, void *user, fti_error *err) {
    if (!root || !fn) return fti_error_set(err, FTI_ERR_INVALID, "fti_walk: no root");
    return fti__walk(root, 0, fn, user, err);
}

/* === base: SHA-256 (FIPS 180-4) === */

static const uint32_t fti__sha256_k[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u,
    0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu,
    0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu,
    0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau, 0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
    0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu,
    0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u, 0x19a4c116u,
    0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u,
    0xc67178f2u};

#define FTI__ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void fti__sha256_block(uint32_t h[8], const unsigned char *p) {
    uint32_t w[64], a, b, c, d, e, f, g, hh, t1, t2;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = ((uint32_t)p[4 * i] << 24) | ((uint32_t)p[4 * i + 1] << 16) |
               ((uint32_t)p[4 * i + 2] << 8) | (uint32_t)p[4 * i + 3];
    for (i = 16; i < 64; i++) {
        uint32_t s0 = FTI__ROR32(w[i - 15], 7) ^ FTI__ROR32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = FTI__ROR32(w[i - 2], 17) ^ FTI__ROR32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (i = 0; i < 64; i++) {
        t1 = hh + (FTI__ROR32(e, 6) ^ FTI__ROR32(e, 11) ^ FTI__ROR32(e, 25)) + ((e & f) ^ (~e & g)) +
             fti__sha256_k[i] + w[i];
        t2 = (FTI__ROR32(a, 2) ^ FTI__ROR32(a, 13) ^ FTI__ROR32(a, 22)) +
             ((a & b) ^ (a & c) ^ (b & c));
        hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

FTIDEF void fti_sha256_init(fti_sha256 *s) {
    static const uint32_t iv[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                   0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    memcpy(s->h, iv, sizeof iv);
    s->n_bytes = 0;
    s->block_len = 0;
}

FTIDEF void fti_sha256_update(fti_sha256 *s, const void *data, size_t n_bytes) {
    const unsigned char *p = (const unsigned char *)data;
    s->n_bytes += n_bytes;
    if (s->block_len) {
        size_t take = 64 - s->block_len < n_bytes ? 64 - s->block_len : n_bytes;
        memcpy(s->block + s->block_len, p, take);
        s->block_len += take;
        p += take;
        n_bytes -= take;
        if (s->block_len < 64) return;
        fti__sha256_block(s->h, s->block);
        s->block_len = 0;
    }
    while (n_bytes >= 64) {
        fti__sha256_block(s->h, p);
        p += 64;
        n_bytes -= 64;
    }
    if (n_bytes) {
        memcpy(s->block, p, n_bytes);
        s->block_len = n_bytes;
    }
}

FTIDEF void fti_sha256_final(fti_sha256 *s, unsigned char out[32]) {
    uint64_t bits = s->n_bytes * 8;
    int i;
    s->block[s->block_len++] = 0x80;
    if (s->block_len > 56) {
        memset(s->block + s->block_len, 0, 64 - s->block_len);
        fti__sha256_block(s->h, s->block);
        s->block_len = 0;
    }
    memset(s->block + s->block_len, 0, 56 - s->block_len);
    for (i = 0; i < 8; i++) s->block[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
    fti__sha256_block(s->h, s->block);
    for (i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(s->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)s->h[i];
    }
}

FTIDEF void fti_sha256_buf(const void *data, size_t n_bytes, unsigned char out[32]) {
    fti_sha256 s;
    fti_sha256_init(&s);
    fti_sha256_update(&s, data, n_bytes);
    fti_sha256_final(&s, out);
}

FTIDEF void fti_sha256_hex(const unsigned char digest[32], char hex[65]) {
    static const char digits[] = "0123456789abcdef";
    int i;
    for (i = 0; i < 32; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[64] = 0;
}

FTIDEF fti_result fti_sha256_file(const char *path, unsigned char out[32], fti_error *err) {
    unsigned char buf[65536];
    fti_sha256 s;
    int fd;
    if (!path) return fti_error_set(err, FTI_ERR_INVALID, "fti_sha256_file: no path");
    fd = fti__sys_open(path, O_RDONLY, 0);
    if (fd < 0)
        return fti_error_set(err, fti__errno_result(errno), "%s: cannot open: %s", path,
                             strerror(errno));
    fti_sha256_init(&s);
    for (;;) {
        long r = fti__sys_read(fd, buf, sizeof buf);
        if (r < 0) {
            int e = errno;
            if (e == EINTR) continue;
            close(fd);
            return fti_error_set(err, FTI_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        if (r == 0) break;
        fti_sha256_update(&s, buf, (size_t)r);
    }
    close(fd);
    fti_sha256_final(&s, out);
    return FTI_OK;
}

/* A 64-bit hash: 8-byte lanes multiplied into two accumulators, then a strong finalizer.
 * Not cryptographic; stable across platforms (explicit little-endian loads). */
static uint64_t fti__mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

FTIDEF uint64_t fti_hash64(const void *data, size_t n_bytes, uint64_t seed) {
    const unsigned char *p = (const unsigned char *)data;
    uint64_t h1 = seed ^ 0x9e3779b97f4a7c15ull, h2 = (seed << 1) ^ 0xc2b2ae3d27d4eb4full;
    size_t n = n_bytes;
    while (n >= 16) {
        uint64_t a = fti_load_u64(p), b = fti_load_u64(p + 8);
        h1 = (h1 ^ (a * 0x87c37b91114253d5ull)) * 0x4cf5ad432745937full;
        h1 = (h1 << 29) | (h1 >> 35);
        h2 = (h2 ^ (b * 0x4cf5ad432745937full)) * 0x87c37b91114253d5ull;
        h2 = (h2 << 31) | (h2 >> 33);
        p += 16;
        n -= 16;
    }
    if (n >= 8) {
        h1 ^= fti_load_u64(p) * 0x87c37b91114253d5ull;
        h1 = ((h1 << 27) | (h1 >> 37)) * 0x9e3779b97f4a7c15ull;
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        uint64_t t = 0;
        size_t i;
        for (i = 0; i < n; i++) t |= (uint64_t)p[i] << (8 * i);
        h2 ^= t * 0x4cf5ad432745937full;
        h2 = ((h2 << 33) | (h2 >> 31)) * 0x9e3779b97f4a7c15ull;
    }
    return fti__mix64(h1 ^ fti__mix64(h2 ^ (uint64_t)n_bytes));
}

/* === base: UTF-8 === */

FTIDEF size_t fti_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp, int *ok) {
    unsigned b0;
    size_t need, i;
    uint32_t c;
    unsigned lo = 0x80, hi = 0xBF;
    if (ok) *ok = 0;
    if (cp) *cp = 0xFFFD;
    if (n == 0) return 0;
    b0 = s[0];
    if (b0 < 0x80) {
        if (cp) *cp = b0;
        if (ok) *ok = 1;
        return 1;
    }
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1;
        c = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2;
        c = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F; /* no surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3;
        c = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        return 1;
    }
    for (i = 1; i <= need; i++) {
        unsigned b;
        if (i >= n) return i; /* truncated: consume the valid prefix */
        b = s[i];
        if (b < lo || b > hi) return i;
        lo = 0x80;
        hi = 0xBF;
        c = (c << 6) | (b & 0x3F);
    }
    if (cp) *cp = c;
    if (ok) *ok = 1;
    return need + 1;
}

FTIDEF size_t fti_utf8_encode(uint32_t cp, unsigned char out[4]) {
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

FTIDEF size_t fti_utf8_valid_prefix(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        int ok;
        size_t k;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        k = fti_utf8_decode(s + i, n - i, NULL, &ok);
        if (!ok) return i;
        i += k;
    }
    return n;
}

FTIDEF size_t fti_utf8_repair(const unsigned char *s, size_t n, fti_buf *out) {
    size_t i = 0, start = 0, bad = 0;
    static const unsigned char fffd[3] = {0xEF, 0xBF, 0xBD};
    while (i < n) {
        int ok;
        size_t k;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        k = fti_utf8_decode(s + i, n - i, NULL, &ok);
        if (ok) {
            i += k;
            continue;
        }
        fti_buf_append(out, s + start, i - start);
        fti_buf_append(out, fffd, 3);
        bad++;
        i += k;
        start = i;
    }
    fti_buf_append(out, s + start, n - start);
    return bad;
}

FTIDEF size_t fti_utf8_incomplete_tail(const unsigned char *s, size_t n) {
    size_t back, i;
    for (back = 1; back <= 3 && back <= n; back++) {
        unsigned b = s[n - back];
        if ((b & 0xC0) == 0x80) continue; /* continuation: look further back */
        if (b < 0xC2 || b > 0xF4) return 0;
        {
            size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
            int ok;
            uint32_t cp;
            if (back >= need) return 0;
            /* Valid so far? Decoding the partial sequence consumes all of it only if it is a
             * correct prefix. */
            i = fti_utf8_decode(s + n - back, back, &cp, &ok);
            return i == back ? back : 0;
        }
    }
    return 0;
}

/* === base: JSON reader === */

typedef struct fti__json_block {
    struct fti__json_block *next;
    size_t used;
    size_t cap;
    /* data follows, 16-aligned */
} fti__json_block;

struct fti_json_doc {
    fti__json_block *blocks;
    fti_json *root;
};

typedef struct fti__json_parser {
    const unsigned char *s;
    size_t n;
    size_t pos;
    fti_json_doc *doc;
    size_t max_depth;
    size_t max_string;
    size_t max_nodes;
    size_t n_nodes;
    fti_error *err;
    fti_result res;
} fti__json_parser;

static void *fti__json_alloc(fti__json_parser *p, size_t n) {
    fti__json_block *b = p->doc->blocks;
    size_t need = (n + 15) & ~(size_t)15;
    if (n > SIZE_MAX - 64) return NULL;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > 16384 ? need : 16384;
        size_t hdr = (sizeof(fti__json_block) + 15) & ~(size_t)15;
        fti__json_block *nb = (fti__json_block *)fti_malloc(hdr + cap);
        if (!nb) return NULL;
        nb->cap = cap;
        nb->used = 0;
        nb->next = b;
        p->doc->blocks = nb;
        b = nb;
    }
    {
        size_t hdr = (sizeof(fti__json_block) + 15) & ~(size_t)15;
        void *r = (unsigned char *)b + hdr + b->used;
        b->used += need;
        return r;
    }
}

static int fti__json_fail(fti__json_parser *p, fti_result code, const char *what) {
    if (p->res == FTI_OK) {
        p->res = code;
        fti_error_set(p->err, code, "offset %zu: %s", p->pos, what);
    }
    return 0;
}

static void fti__json_ws(fti__json_parser *p) {
    while (p->pos < p->n) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static fti_json *fti__json_node(fti__json_parser *p, fti_json_type t) {
    fti_json *j;
    if (++p->n_nodes > p->max_nodes) {
        fti__json_fail(p, FTI_ERR_LIMIT, "too many values");
        return NULL;
    }
    j = (fti_json *)fti__json_alloc(p, sizeof *j);
    if (!j) {
        fti__json_fail(p, FTI_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memset(j, 0, sizeof *j);
    j->type = t;
    return j;
}

static int fti__hex4(const unsigned char *s, uint32_t *out) {
    uint32_t v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        unsigned c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return 0;
    }
    *out = v;
    return 1;
}

/* Parses a string at p->pos (at the opening quote); stores the unescaped bytes. */
static int fti__json_string(fti__json_parser *p, const char **out, size_t *out_len) {
    size_t start = ++p->pos, i, raw_len, k = 0;
    char *dst;
    /* First pass: find the closing quote and check the raw length. */
    for (i = start; i < p->n; i++) {
        unsigned char c = p->s[i];
        if (c == '"') break;
        if (c == '\\') {
            i++;
            continue;
        }
        if (c < 0x20) {
            p->pos = i;
            return fti__json_fail(p, FTI_ERR_FORMAT, "control character in string");
        }
    }
    if (i >= p->n) {
        p->pos = p->n;
        return fti__json_fail(p, FTI_ERR_FORMAT, "unterminated string");
    }
    raw_len = i - start;
    if (raw_len > p->max_string) return fti__json_fail(p, FTI_ERR_LIMIT, "string too long");
    dst = (char *)fti__json_alloc(p, raw_len + 1);
    if (!dst) return fti__json_fail(p, FTI_ERR_NOMEM, "out of memory");
    i = start;
    while (p->s[i] != '"') {
        unsigned char c = p->s[i];
        if (c == '\\') {
            unsigned char e = p->s[i + 1];
            i += 2;
            switch (e) {
            case '"': dst[k++] = '"'; break;
            case '\\': dst[k++] = '\\'; break;
            case '/': dst[k++] = '/'; break;
            case 'b': dst[k++] = '\b'; break;
            case 'f': dst[k++] = '\f'; break;
            case 'n': dst[k++] = '\n'; break;
            case 'r': dst[k++] = '\r'; break;
            case 't': dst[k++] = '\t'; break;
            case 'u': {
                uint32_t cp, lo;
                unsigned char enc[4];
                size_t m;
                if (i + 4 > p->n || !fti__hex4(p->s + i, &cp)) {
                    p->pos = i;
                    return fti__json_fail(p, FTI_ERR_FORMAT, "bad \\u escape");
                }
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (i + 6 <= p->n && p->s[i] == '\\' && p->s[i + 1] == 'u' &&
                        fti__hex4(p->s + i + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    } else {
                        cp = 0xFFFD; /* lone high surrogate */
                    }
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    cp = 0xFFFD; /* lone low surrogate */
                }
                m = fti_utf8_encode(cp, enc);
                memcpy(dst + k, enc, m); /* escapes are >= 6 bytes raw, output <= 4 */
                k += m;
                break;
            }
            default:
                p->pos = i - 1;
                return fti__json_fail(p, FTI_ERR_FORMAT, "bad escape");
            }
        } else if (c < 0x80) {
            dst[k++] = (char)c;
            i++;
        } else {
            int ok;
            size_t m = fti_utf8_decode(p->s + i, (size_t)(p->s + start + raw_len - (p->s + i)),
                                       NULL, &ok);
            if (!ok) {
                p->pos = i;
                return fti__json_fail(p, FTI_ERR_FORMAT, "invalid UTF-8 in string");
            }
            memcpy(dst + k, p->s + i, m);
            k += m;
            i += m;
        }
    }
    dst[k] = 0;
    p->pos = i + 1;
    *out = dst;
    *out_len = k;
    return 1;
}

static int fti__json_number(fti__json_parser *p, fti_json *j) {
    size_t start = p->pos, i = p->pos, n_int_digits = 0;
    int is_int = 1, neg = 0;
    char small[64];
    char *buf = small;
    const unsigned char *s = p->s;
    if (i < p->n && s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i < p->n && s[i] == '0') {
        i++;
        n_int_digits = 1;
    } else if (i < p->n && s[i] >= '1' && s[i] <= '9') {
        while (i < p->n && s[i] >= '0' && s[i] <= '9') {
            i++;
            n_int_digits++;
        }
    } else {
        p->pos = i;
        return fti__json_fail(p, FTI_ERR_FORMAT, "bad number");
    }
    if (i < p->n && s[i] == '.') {
        is_int = 0;
        i++;
        if (i >= p->n || s[i] < '0' || s[i] > '9') {
            p->pos = i;
            return fti__json_fail(p, FTI_ERR_FORMAT, "bad number: digit expected after '.'");
        }
        while (i < p->n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < p->n && (s[i] == 'e' || s[i] == 'E')) {
        is_int = 0;
        i++;
        if (i < p->n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->n || s[i] < '0' || s[i] > '9') {
            p->pos = i;
            return fti__json_fail(p, FTI_ERR_FORMAT, "bad number: digit expected in exponent");
        }
        while (i < p->n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i - start > 1024) return fti__json_fail(p, FTI_ERR_LIMIT, "number literal too long");
    if (i - start >= sizeof small) {
        buf = (char *)fti_malloc(i - start + 1);
        if (!buf) return fti__json_fail(p, FTI_ERR_NOMEM, "out of memory");
    }
    memcpy(buf, s + start, i - start);
    buf[i - start] = 0;
    j->num = strtod(buf, NULL);
    if (buf != small) fti_free(buf);
    if (!isfinite(j->num)) return fti__json_fail(p, FTI_ERR_LIMIT, "number out of range");
    if (is_int && n_int_digits <= 19) {
        /* exact int64 if it fits */
        uint64_t v = 0;
        size_t k = start + (size_t)neg;
        int fits = 1;
        for (; k < i; k++) {
            unsigned d = (unsigned)(s[k] - '0');
            if (v > (UINT64_MAX - d) / 10) {
                fits = 0;
                break;
            }
            v = v * 10 + d;
        }
        if (fits && (neg ? v <= (uint64_t)INT64_MAX + 1 : v <= (uint64_t)INT64_MAX)) {
            j->is_int = 1;
            j->i = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
        }
    }
    p->pos = i;
    return 1;
}

static fti_json *fti__json_value(fti__json_parser *p, size_t depth);

static int fti__json_literal(fti__json_parser *p, const char *lit) {
    size_t n = strlen(lit);
    if (p->n - p->pos < n || memcmp(p->s + p->pos, lit, n) != 0)
        return fti__json_fail(p, FTI_ERR_FORMAT, "unexpected character");
    p->pos += n;
    return 1;
}

static fti_json *fti__json_container(fti__json_parser *p, size_t depth, int is_obj) {
    fti_json *j = fti__json_node(p, is_obj ? FTI_JSON_OBJECT : FTI_JSON_ARRAY), *last = NULL;
    unsigned char close = is_obj ? '}' : ']';
    if (!j) return NULL;
    if (depth >= p->max_depth) {
        fti__json_fail(p, FTI_ERR_LIMIT, "nesting too deep");
        return NULL;
    }
    p->pos++;
    fti__json_ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) {
        p->pos++;
        return j;
    }
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        fti_json *v;
        fti__json_ws(p);
        if (is_obj) {
            if (p->pos >= p->n || p->s[p->pos] != '"') {
                fti__json_fail(p, FTI_ERR_FORMAT, p->pos >= p->n ? "unexpected end of input"
                                                                 : "member name expected");
                return NULL;
            }
            if (!fti__json_string(p, &key, &key_len)) return NULL;
            fti__json_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':') {
                fti__json_fail(p, FTI_ERR_FORMAT, "':' expected");
                return NULL;
            }
            p->pos++;
        }
        v = fti__json_value(p, depth + 1);
        if (!v) return NULL;
        v->key = key;
        v->key_len = key_len;
        if (last) last->next = v;
        else j->child = v;
        last = v;
        j->len++;
        fti__json_ws(p);
        if (p->pos >= p->n) {
            fti__json_fail(p, FTI_ERR_FORMAT, "unexpected end of input");
            return NULL;
        }
        if (p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->s[p->pos] == close) {
            p->pos++;
            return j;
        }
        fti__json_fail(p, FTI_ERR_FORMAT, is_obj ? "',' or '}' expected" : "',' or ']' expected");
        return NULL;
    }
}

static fti_json *fti__json_value(fti__json_parser *p, size_t depth) {
    fti_json *j;
    fti__json_ws(p);
    if (p->pos >= p->n) {
        fti__json_fail(p, FTI_ERR_FORMAT, "unexpected end of input");
        return NULL;
    }
    switch (p->s[p->pos]) {
    case '{':
        return fti__json_container(p, depth, 1);
    case '[':
        return fti__json_container(p, depth, 0);
    case '"':
        j = fti__json_node(p, FTI_JSON_STRING);
        if (!j || !fti__json_string(p, &j->str, &j->len)) return NULL;
        return j;
    case 't':
        j = fti__json_node(p, FTI_JSON_TRUE);
        return j && fti__json_literal(p, "true") ? j : NULL;
    case 'f':
        j = fti__json_node(p, FTI_JSON_FALSE);
        return j && fti__json_literal(p, "false") ? j : NULL;
    case 'n':
        j = fti__json_node(p, FTI_JSON_NULL);
        return j && fti__json_literal(p, "null") ? j : NULL;
    default:
        j = fti__json_node(p, FTI_JSON_NUMBER);
        return j && fti__json_number(p, j) ? j : NULL;
    }
}

FTIDEF fti_result fti_json_parse(const char *text, size_t len, const fti_json_opts *opts,
                                 fti_json_doc **out, size_t *consumed, fti_error *err) {
    fti__json_parser p;
    fti_json_doc *doc;
    if (!out) return fti_error_set(err, FTI_ERR_INVALID, "fti_json_parse: no output");
    *out = NULL;
    if (!text && len) return fti_error_set(err, FTI_ERR_INVALID, "fti_json_parse: no text");
    doc = (fti_json_doc *)fti_malloc(sizeof *doc);
    if (!doc) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    doc->blocks = NULL;
    doc->root = NULL;
    memset(&p, 0, sizeof p);
    p.s = (const unsigned char *)(text ? text : "");
    p.n = len;
    p.doc = doc;
    p.err = err;
    p.max_depth = opts && opts->max_depth ? opts->max_depth : FTI_JSON_MAX_DEPTH;
    p.max_string = opts && opts->max_string ? opts->max_string : FTI_JSON_MAX_STRING;
    p.max_nodes = opts && opts->max_nodes ? opts->max_nodes : FTI_JSON_MAX_NODES;
    doc->root = fti__json_value(&p, 0);
    if (doc->root) {
        size_t end = p.pos;
        fti__json_ws(&p);
        if (opts && opts->allow_trailing) p.pos = end;
        if (p.pos != p.n && !(opts && opts->allow_trailing))
            fti__json_fail(&p, FTI_ERR_FORMAT, "unexpected data after the value");
    }
    if (p.res != FTI_OK || !doc->root) {
        if (p.res == FTI_OK) fti__json_fail(&p, FTI_ERR_FORMAT, "no value");
        fti_json_free(doc);
        return p.res;
    }
    if (consumed) *consumed = p.pos;
    *out = doc;
    return FTI_OK;
}

FTIDEF const fti_json *fti_json_root(const fti_json_doc *doc) { return doc ? doc->root : NULL; }

FTIDEF void fti_json_free(fti_json_doc *doc) {
    fti__json_block *b;
    if (!doc) return;
    b = doc->blocks;
    while (b) {
        fti__json_block *next = b->next;
        fti_free(b);
        b = next;
    }
    fti_free(doc);
}

FTIDEF const fti_json *fti_json_get(const fti_json *obj, const char *key) {
    const fti_json *c;
    size_t n;
    if (!obj || obj->type != FTI_JSON_OBJECT || !key) return NULL;
    n = strlen(key);
    for (c = obj->child; c; c = c->next)
        if (c->key_len == n && memcmp(c->key, key, n) == 0) return c;
    return NULL;
}

FTIDEF const fti_json *fti_json_at(const fti_json *arr, size_t i) {
    const fti_json *c;
    if (!arr || (arr->type != FTI_JSON_ARRAY && arr->type != FTI_JSON_OBJECT)) return NULL;
    for (c = arr->child; c && i > 0; c = c->next) i--;
    return c;
}

FTIDEF const char *fti_json_get_str(const fti_json *obj, const char *key, const char *fallback) {
    const fti_json *v = fti_json_get(obj, key);
    return v && v->type == FTI_JSON_STRING ? v->str : fallback;
}

FTIDEF double fti_json_get_num(const fti_json *obj, const char *key, double fallback) {
    const fti_json *v = fti_json_get(obj, key);
    return v && v->type == FTI_JSON_NUMBER ? v->num : fallback;
}

FTIDEF int64_t fti_json_get_int(const fti_json *obj, const char *key, int64_t fallback) {
    const fti_json *v = fti_json_get(obj, key);
    return v && v->type == FTI_JSON_NUMBER && v->is_int ? v->i : fallback;
}

/* === base: JSON writer === */

FTIDEF void fti_json_escape(fti_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, start = 0;
    fti_buf_putc(b, '"');
    while (i < n) {
        unsigned char c = u[i];
        const char *esc = NULL;
        char ubuf[7];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            int ok;
            size_t k = fti_utf8_decode(u + i, n - i, NULL, &ok);
            if (ok) {
                i += k;
                continue;
            }
            fti_buf_append(b, u + start, i - start);
            fti_buf_append(b, "\xEF\xBF\xBD", 3);
            i += k;
            start = i;
            continue;
        }
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            ubuf[0] = '\\', ubuf[1] = 'u', ubuf[2] = '0', ubuf[3] = '0';
            ubuf[4] = hex[c >> 4], ubuf[5] = hex[c & 15], ubuf[6] = 0;
            esc = ubuf;
        }
        fti_buf_append(b, u + start, i - start);
        fti_buf_puts(b, esc);
        i++;
        start = i;
    }
    fti_buf_append(b, u + start, n - start);
    fti_buf_putc(b, '"');
}

static void fti__jw_indent(fti_jw *w) {
    int i;
    if (!w->pretty) return;
    fti_buf_putc(w->out, '\n');
    for (i = 0; i < w->depth; i++) fti_buf_puts(w->out, "  ");
}

/* Called before a value or key: writes the comma and indentation, except right after a key. */
static void fti__jw_pre(fti_jw *w) {
    if (w->depth == 0) return;
    if (w->first[w->depth] == 2) { /* value right after its key */
        w->first[w->depth] = 0;
        return;
    }
    if (!w->first[w->depth]) fti_buf_putc(w->out, ',');
    w->first[w->depth] = 0;
    fti__jw_indent(w);
}

FTIDEF void fti_jw_init(fti_jw *w, fti_buf *out, int pretty) {
    memset(w, 0, sizeof *w);
    w->out = out;
    w->pretty = pretty;
}

static void fti__jw_open(fti_jw *w, char c) {
    fti__jw_pre(w);
    fti_buf_putc(w->out, c);
    if (w->depth < 63) w->depth++;
    w->first[w->depth] = 1;
}

static void fti__jw_close(fti_jw *w, char c) {
    int empty = w->first[w->depth] == 1;
    if (w->depth > 0) w->depth--;
    if (!empty) fti__jw_indent(w);
    fti_buf_putc(w->out, c);
}

FTIDEF void fti_jw_obj_begin(fti_jw *w) { fti__jw_open(w, '{'); }
FTIDEF void fti_jw_obj_end(fti_jw *w) { fti__jw_close(w, '}'); }
FTIDEF void fti_jw_arr_begin(fti_jw *w) { fti__jw_open(w, '['); }
FTIDEF void fti_jw_arr_end(fti_jw *w) { fti__jw_close(w, ']'); }

FTIDEF void fti_jw_key(fti_jw *w, const char *key) { fti_jw_keyn(w, key, strlen(key)); }

FTIDEF void fti_jw_keyn(fti_jw *w, const char *key, size_t n) {
    fti__jw_pre(w);
    fti_json_escape(w->out, key, n);
    fti_buf_puts(w->out, w->pretty ? ": " : ":");
    w->first[w->depth] = 2;
}

FTIDEF void fti_jw_strn(fti_jw *w, const char *s, size_t n) {
    fti__jw_pre(w);
    fti_json_escape(w->out, s ? s : "", s ? n : 0);
}

FTIDEF void fti_jw_str(fti_jw *w, const char *s) { fti_jw_strn(w, s, s ? strlen(s) : 0); }

FTIDEF void fti_jw_num(fti_jw *w, double v) {
    fti__jw_pre(w);
    if (!isfinite(v)) fti_buf_puts(w->out, "null");
    else if (v == floor(v) && fabs(v) < 1e15) fti_buf_printf(w->out, "%.0f", v);
    else fti_buf_printf(w->out, "%.17g", v);
}

FTIDEF void fti_jw_int(fti_jw *w, int64_t v) {
    fti__jw_pre(w);
    fti_buf_printf(w->out, "%lld", (long long)v);
}

FTIDEF void fti_jw_bool(fti_jw *w, int v) {
    fti__jw_pre(w);
    fti_buf_puts(w->out, v ? "true" : "false");
}

FTIDEF void fti_jw_null(fti_jw *w) {
    fti__jw_pre(w);
    fti_buf_puts(w->out, "null");
}

/* === base: RNG (PCG32, XSH-RR output) === */

FTIDEF void fti_rng_seed(fti_rng *r, uint64_t seed, uint64_t stream) {
    r->state = 0;
    r->inc = (stream << 1) | 1u;
    (void)fti_rng_u32(r);
    r->state += seed;
    (void)fti_rng_u32(r);
}

FTIDEF uint32_t fti_rng_u32(fti_rng *r) {
    uint64_t old = r->state;
    uint32_t xorshifted, rot;
    r->state = old * 6364136223846793005ull + r->inc;
    xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
    rot = (uint32_t)(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31));
}

FTIDEF uint64_t fti_rng_u64(fti_rng *r) {
    uint64_t hi = fti_rng_u32(r);
    return (hi << 32) | fti_rng_u32(r);
}

FTIDEF uint32_t fti_rng_below(fti_rng *r, uint32_t bound) {
    uint32_t threshold, x;
    if (bound <= 1) return 0;
    threshold = (uint32_t)(0u - bound) % bound;
    do {
        x = fti_rng_u32(r);
    } while (x < threshold);
    return x % bound;
}

FTIDEF float fti_rng_float(fti_rng *r) { return (float)(fti_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

FTIDEF double fti_rng_double(fti_rng *r) {
    return (double)(fti_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

FTIDEF float fti_rng_normal(fti_rng *r) {
    /* Box-Muller; one of the pair is dropped so the state is the whole struct. */
    double u1 = 1.0 - fti_rng_double(r); /* (0, 1] */
    double u2 = fti_rng_double(r);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* === base: clock, environment === */

FTIDEF uint64_t fti_time_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

FTIDEF double fti_time_wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

FTIDEF void fti_time_iso8601(double wall_seconds, char out[32]) {
    /* Civil-from-days (proleptic Gregorian), so no gmtime_r is needed. */
    int64_t secs = (int64_t)floor(wall_seconds);
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t rem = secs - days * 86400;
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2) y++;
    if (y < 0) y = 0;
    if (y > 9999) y = 9999;
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y, (int)m, (int)d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60));
}

FTIDEF long fti_env_long(const char *name, long fallback) {
    const char *v = getenv(name);
    char *end;
    long x;
    if (!v || !*v) return fallback;
    errno = 0;
    x = strtol(v, &end, 10);
    if (errno || *end) return fallback;
    return x;
}

FTIDEF int fti_cpu_count(void) {
#ifdef _SC_NPROCESSORS_ONLN
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n > 1024 ? 1024 : n) : 1;
#else
    return 1;
#endif
}

/* === base: progress bar === */

static void fti__fmt_duration(double s, char *out, size_t n) {
    if (s < 0 || !isfinite(s)) snprintf(out, n, "--");
    else if (s < 60) snprintf(out, n, "%.0fs", s);
    else if (s < 3600) snprintf(out, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(out, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

FTIDEF void fti_progress_begin(fti_progress *p, void *stream, const char *label, const char *unit,
                               uint64_t total) {
    memset(p, 0, sizeof *p);
    p->stream = stream;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "");
    p->total = total;
    p->t_start_ns = fti_time_ns();
    p->is_tty = stream && isatty(fileno((FILE *)stream));
}

static void fti__progress_draw(fti_progress *p, const char *extra, int final) {
    FILE *f = (FILE *)p->stream;
    double el = (double)(fti_time_ns() - p->t_start_ns) / 1e9;
    double rate = el > 0 ? (double)p->done / el : 0;
    char eta[32], elapsed[32];
    fti__fmt_duration(el, elapsed, sizeof elapsed);
    if (p->total && rate > 0 && !final)
        fti__fmt_duration((double)(p->total - (p->done < p->total ? p->done : p->total)) / rate,
                          eta, sizeof eta);
    else snprintf(eta, sizeof eta, "--");
    if (p->is_tty) fprintf(f, "\r\033[K");
    if (p->total) {
        int width = 24, i, fill;
        double frac = (double)p->done / (double)p->total;
        if (frac > 1) frac = 1;
        fill = (int)(frac * width);
        fprintf(f, "%s [", p->label);
        for (i = 0; i < width; i++) fputc(i < fill ? '#' : '.', f);
        fprintf(f, "] %3.0f%% %llu/%llu %s", frac * 100, (unsigned long long)p->done,
                (unsigned long long)p->total, p->unit);
    } else {
        fprintf(f, "%s %llu %s", p->label, (unsigned long long)p->done, p->unit);
    }
    fprintf(f, " %.1f %s/s %s %s%s%s", rate, p->unit, final ? "in" : "ETA", final ? elapsed : eta,
            extra && *extra ? "  " : "", extra ? extra : "");
    if (final || !p->is_tty) fputc('\n', f);
    fflush(f);
}

FTIDEF void fti_progress_update(fti_progress *p, uint64_t done, const char *extra) {
    uint64_t now;
    p->done = done;
    if (!p->stream || !p->is_tty) return;
    now = fti_time_ns();
    if (p->drawn && now - p->t_last_ns < 100000000ull) return;
    p->t_last_ns = now;
    p->drawn = 1;
    fti__progress_draw(p, extra, 0);
}

FTIDEF void fti_progress_end(fti_progress *p, const char *extra) {
    if (!p->stream) return;
    fti__progress_draw(p, extra, 1);
}
/* ---- end src/00_base.c ---- */
/* ---- begin src/01_threads.c ---- */
/* === threads: implementation === */
/* #include "01_threads.h" (amalgamated) */

#if !defined(FTI_NO_THREADS) && !defined(_WIN32)
#include <pthread.h>
#define FTI__HAVE_THREADS 1
#else
#define FTI__HAVE_THREADS 0
#endif

/* Atomics: GCC/Clang builtins where available; otherwise every handoff goes through the mutex. */
#if FTI__HAVE_THREADS && (defined(__GNUC__) || defined(__clang__)) && !defined(__TINYC__)
#define FTI__ATOMICS 1
#define FTI__LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define FTI__STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define FTI__ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)
#if defined(__x86_64__) || defined(__i386__)
#define FTI__PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define FTI__PAUSE() __asm__ __volatile__("yield")
#else
#define FTI__PAUSE() ((void)0)
#endif
#else
#define FTI__ATOMICS 0
#endif

/* How long an idle worker (or the waiting caller) spins before sleeping. */
#ifndef FTI_POOL_SPIN_NS
#define FTI_POOL_SPIN_NS 200000u
#endif

struct fti_pool {
    int n_threads;
#if FTI__HAVE_THREADS
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    int started; /* workers successfully created */
    /* the current job, published by bumping `generation` */
    fti_pool_fn fn;
    void *ctx;
    size_t n;
    int n_chunks;
    int each; /* fti_pool_each: chunk t is [t, t+1) */
    uint64_t generation;
    int n_done;
    int stop;
#endif
};

#if FTI__HAVE_THREADS
/* Chunk t of k over [0, n): sizes differ by at most one, the larger ones first. */
static void fti__pool_chunk(size_t n, int k, int t, size_t *begin, size_t *end) {
    size_t base = n / (size_t)k, extra = n % (size_t)k, tt = (size_t)t;
    *begin = base * tt + (tt < extra ? tt : extra);
    *end = *begin + base + (tt < extra ? 1 : 0);
}

typedef struct fti__worker_arg {
    fti_pool *pool;
    int id;
} fti__worker_arg;

static void fti__pool_run_chunk(fti_pool *p, int id) {
    size_t b, e;
    if (id >= p->n_chunks) return;
    if (p->each) {
        p->fn(p->ctx, (size_t)id, (size_t)id + 1, id);
        return;
    }
    fti__pool_chunk(p->n, p->n_chunks, id, &b, &e);
    if (b < e) p->fn(p->ctx, b, e, id);
}

static void *fti__pool_worker(void *arg) {
    fti__worker_arg *wa = (fti__worker_arg *)arg;
    fti_pool *p = wa->pool;
    int id = wa->id;
    uint64_t seen = 0;
    fti_free(wa);
    for (;;) {
        uint64_t gen;
#if FTI__ATOMICS
        {
            uint64_t t0 = 0;
            unsigned spins = 0;
            for (;;) {
                gen = FTI__LOAD(&p->generation);
                if (gen != seen || FTI__LOAD(&p->stop)) break;
                FTI__PAUSE();
                if ((++spins & 255) == 0) {
                    uint64_t now = fti_time_ns();
                    if (!t0) t0 = now;
                    else if (now - t0 > FTI_POOL_SPIN_NS) break;
                }
            }
        }
        if (gen == seen && !FTI__LOAD(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            while (p->generation == seen && !p->stop) pthread_cond_wait(&p->cv_work, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (FTI__LOAD(&p->stop)) break;
        gen = FTI__LOAD(&p->generation);
#else
        pthread_mutex_lock(&p->mu);
        while (p->generation == seen && !p->stop) pthread_cond_wait(&p->cv_work, &p->mu);
        gen = p->generation;
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        pthread_mutex_unlock(&p->mu);
#endif
        seen = gen;
        fti__pool_run_chunk(p, id);
#if FTI__ATOMICS
        if (FTI__ADD(&p->n_done, 1) == p->n_threads - 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
#else
        pthread_mutex_lock(&p->mu);
        if (++p->n_done == p->n_threads - 1) pthread_cond_signal(&p->cv_done);
        pthread_mutex_unlock(&p->mu);
#endif
    }
    return NULL;
}
#endif

FTIDEF fti_pool *fti_pool_create(int n_threads) {
    fti_pool *p;
    if (n_threads <= 0) {
        long env = fti_env_long("FTI_THREADS", 0);
        n_threads = env > 0 ? (int)(env > 256 ? 256 : env) : fti_cpu_count();
    }
    if (n_threads > 256) n_threads = 256;
#if !FTI__HAVE_THREADS
    n_threads = 1;
#endif
    p = (fti_pool *)fti_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
#if FTI__HAVE_THREADS
    if (n_threads > 1) {
        int i;
        p->threads = (pthread_t *)fti_calloc((size_t)n_threads, sizeof(pthread_t));
        if (!p->threads) {
            fti_free(p);
            return NULL;
        }
        if (pthread_mutex_init(&p->mu, NULL) != 0) {
            fti_free(p->threads);
            fti_free(p);
            return NULL;
        }
        if (pthread_cond_init(&p->cv_work, NULL) != 0) {
            pthread_mutex_destroy(&p->mu);
            fti_free(p->threads);
            fti_free(p);
            return NULL;
        }
        if (pthread_cond_init(&p->cv_done, NULL) != 0) {
            pthread_cond_destroy(&p->cv_work);
            pthread_mutex_destroy(&p->mu);
            fti_free(p->threads);
            fti_free(p);
            return NULL;
        }
        for (i = 1; i < n_threads; i++) {
            fti__worker_arg *wa = (fti__worker_arg *)fti_malloc(sizeof *wa);
            if (!wa) break;
            wa->pool = p;
            wa->id = i;
            if (pthread_create(&p->threads[i], NULL, fti__pool_worker, wa) != 0) {
                fti_free(wa);
                break;
            }
            p->started++;
        }
        if (p->started != n_threads - 1) {
            fti_pool_free(p);
            return NULL;
        }
    }
#endif
    return p;
}

FTIDEF void fti_pool_free(fti_pool *p) {
    if (!p) return;
#if FTI__HAVE_THREADS
    if (p->n_threads > 1) {
        int i;
        pthread_mutex_lock(&p->mu);
#if FTI__ATOMICS
        FTI__STORE(&p->stop, 1);
#else
        p->stop = 1;
#endif
        pthread_cond_broadcast(&p->cv_work);
        pthread_mutex_unlock(&p->mu);
        for (i = 1; i <= p->started; i++) pthread_join(p->threads[i], NULL);
        pthread_cond_destroy(&p->cv_done);
        pthread_cond_destroy(&p->cv_work);
        pthread_mutex_destroy(&p->mu);
        fti_free(p->threads);
    }
#endif
    fti_free(p);
}

FTIDEF int fti_pool_threads(const fti_pool *pool) { return pool ? pool->n_threads : 1; }

#if FTI__HAVE_THREADS
static void fti__pool_dispatch(fti_pool *p, fti_pool_fn fn, void *ctx, size_t n, int n_chunks,
                               int each) {
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->n_chunks = n_chunks;
    p->each = each;
#if FTI__ATOMICS
    FTI__STORE(&p->n_done, 0);
    pthread_mutex_lock(&p->mu);
    FTI__STORE(&p->generation, p->generation + 1);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    fti__pool_run_chunk(p, 0);
    {
        uint64_t t0 = fti_time_ns();
        unsigned spins = 0;
        while (FTI__LOAD(&p->n_done) != p->n_threads - 1) {
            FTI__PAUSE();
            if ((++spins & 255) == 0 && fti_time_ns() - t0 > FTI_POOL_SPIN_NS) {
                pthread_mutex_lock(&p->mu);
                while (FTI__LOAD(&p->n_done) != p->n_threads - 1)
                    pthread_cond_wait(&p->cv_done, &p->mu);
                pthread_mutex_unlock(&p->mu);
                break;
            }
        }
    }
#else
    pthread_mutex_lock(&p->mu);
    p->n_done = 0;
    p->generation++;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    fti__pool_run_chunk(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->n_done != p->n_threads - 1) pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
#endif
}
#endif

FTIDEF void fti_pool_for(fti_pool *pool, size_t n, size_t grain, fti_pool_fn fn, void *ctx) {
    size_t k;
    if (n == 0 || !fn) return;
    if (grain == 0) grain = 1;
    k = pool ? (size_t)pool->n_threads : 1;
    if (k > (n + grain - 1) / grain) k = (n + grain - 1) / grain;
    if (k <= 1) {
        fn(ctx, 0, n, 0);
        return;
    }
#if FTI__HAVE_THREADS
    fti__pool_dispatch(pool, fn, ctx, n, (int)k, 0);
#endif
}

FTIDEF void fti_pool_each(fti_pool *pool, fti_pool_fn fn, void *ctx) {
    if (!fn) return;
    if (!pool || pool->n_threads <= 1) {
        fn(ctx, 0, 1, 0);
        return;
    }
#if FTI__HAVE_THREADS
    fti__pool_dispatch(pool, fn, ctx, (size_t)pool->n_threads, pool->n_threads, 1);
#endif
}

FTIDEF fti_result fti_mutex_init(fti_mutex *m) {
    if (!m) return FTI_ERR_INVALID;
    m->impl = NULL;
#if FTI__HAVE_THREADS
    m->impl = fti_malloc(sizeof(pthread_mutex_t));
    if (!m->impl) return FTI_ERR_NOMEM;
    if (pthread_mutex_init((pthread_mutex_t *)m->impl, NULL) != 0) {
        fti_free(m->impl);
        m->impl = NULL;
        return FTI_ERR_NOMEM;
    }
#endif
    return FTI_OK;
}

FTIDEF void fti_mutex_lock(fti_mutex *m) {
#if FTI__HAVE_THREADS
    if (m && m->impl) pthread_mutex_lock((pthread_mutex_t *)m->impl);
#else
    (void)m;
#endif
}

FTIDEF void fti_mutex_unlock(fti_mutex *m) {
#if FTI__HAVE_THREADS
    if (m && m->impl) pthread_mutex_unlock((pthread_mutex_t *)m->impl);
#else
    (void)m;
#endif
}

FTIDEF void fti_mutex_destroy(fti_mutex *m) {
#if FTI__HAVE_THREADS
    if (m && m->impl) {
        pthread_mutex_destroy((pthread_mutex_t *)m->impl);
        fti_free(m->impl);
        m->impl = NULL;
    }
#else
    (void)m;
#endif
}
/* ---- end src/01_threads.c ---- */
/* ---- begin src/02_kernels.c ---- */
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
/* #include "02_kernels.h" (amalgamated) */

/* #include <math.h> (already included) */
/* #include <stdlib.h> (already included) */
/* #include <string.h> (already included) */

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
    return NULL;
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

static void fti__quantize_q8_0_ref(fti_block_q8_0 *dst, const float *src, size_t nb) {
    size_t b, j;
    for (b = 0; b < nb; b++, src += FTI_QK) {
        float amax = 0.0f, d, id;
        for (j = 0; j < FTI_QK; j++) amax = fabsf(src[j]) > amax ? fabsf(src[j]) : amax;
        d = amax / 127.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = fti_f32_to_f16(d);
        for (j = 0; j < FTI_QK; j++) dst[b].qs[j] = (int8_t)roundf(src[j] * id);
    }
}

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
        for (j = 0; j < FTI_QK / 2; j++) {
            int q0 = (int)(src[j] * id + 8.5f), q1 = (int)(src[j + 16] * id + 8.5f);
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            dst[b].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
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
 * Edge tiles run the same micro-kernel into a stack tile and copy the valid part out.
 */
typedef struct fti__gemm_ctx {
    const fti_kernels *k;
    unsigned flags;
    size_t M, N, K, lda, ldb, ldc;
    const float *A, *B;
    float *C;
    int split_n; /* items are nr-column tiles (else mr-row tiles) */
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

/* Packing reads the source row by row (sequential addresses, so the hardware prefetcher
 * streams them) and scatters into the panels; panels are zero-padded to mr (nr). */
static void fti__pack_a(const fti__gemm_ctx *g, size_t i0, size_t mc, size_t p0, size_t kc,
                        float *out) {
    size_t mr = g->k->mr, ip, i, p;
    if (g->flags & FTI_MM_TRANS_A) { /* A is (K,M): row p holds op(A)[i0.., p] contiguously */
        for (p = 0; p < kc; p++) {
            const float *src = g->A + (p0 + p) * g->lda + i0;
            for (ip = 0; ip < mc; ip += mr) {
                size_t rows = mc - ip < mr ? mc - ip : mr;
                float *dst = out + ip * kc + p * mr;
                memcpy(dst, src + ip, rows * sizeof(float));
                for (i = rows; i < mr; i++) dst[i] = 0.0f;
            }
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

static void fti__pack_b(const fti__gemm_ctx *g, size_t j0, size_t nc, size_t p0, size_t kc,
                        float *out) {
    size_t nr = g->k->nr, jp, j, p;
    if (!(g->flags & FTI_MM_TRANS_B)) { /* B is (K,N): row p holds op(B)[p, j0..] */
        for (p = 0; p < kc; p++) {
            const float *src = g->B + (p0 + p) * g->ldb + j0;
            for (jp = 0; jp < nc; jp += nr) {
                size_t cols = nc - jp < nr ? nc - jp : nr;
                float *dst = out + jp * kc + p * nr;
                memcpy(dst, src + jp, cols * sizeof(float));
                for (j = cols; j < nr; j++) dst[j] = 0.0f;
            }
        }
        return;
    }
    for (jp = 0; jp < nc; jp += nr, out += nr * kc) { /* B is (N,K): column j is row j of B */
        size_t cols = nc - jp < nr ? nc - jp : nr;
        fti__pack_transpose(out, nr, g->B + (j0 + jp) * g->ldb + p0, g->ldb, cols, kc);
        for (j = cols; j < nr; j++)
            for (p = 0; p < kc; p++) out[p * nr + j] = 0.0f;
    }
}

/* K is cut into equal blocks of at most k->kc (K = 288 with kc 256 gives 2 × 144, not
 * 256 + 32): the block size depends only on K, so the summation order never depends on threads. */
static size_t fti__gemm_kc(const fti_kernels *k, size_t K) {
    size_t n_blocks = (K + k->kc - 1) / k->kc;
    return n_blocks ? (K + n_blocks - 1) / n_blocks : 1;
}

static void fti__gemm_block(const fti__gemm_ctx *g, size_t m0, size_t m1, size_t n0, size_t n1,
                            float *Ap, float *Bp) {
    const fti_kernels *k = g->k;
    size_t mr = k->mr, nr = k->nr, jc, pc, ic, ir, jr, kc_blk = fti__gemm_kc(k, g->K);
    float tile[32 * 32];
    for (jc = n0; jc < n1; jc += k->nc) {
        size_t nc = n1 - jc < k->nc ? n1 - jc : k->nc;
        for (pc = 0; pc < g->K; pc += kc_blk) {
            size_t kc = g->K - pc < kc_blk ? g->K - pc : kc_blk;
            int acc = pc > 0 || (g->flags & FTI_MM_ACCUMULATE);
            fti__pack_b(g, jc, nc, pc, kc, Bp);
            for (ic = m0; ic < m1; ic += k->mc) {
                size_t mc = m1 - ic < k->mc ? m1 - ic : k->mc;
                fti__pack_a(g, ic, mc, pc, kc, Ap);
                for (ir = 0; ir < mc; ir += mr) {
                    const float *a = Ap + ir * kc;
                    size_t rows = mc - ir < mr ? mc - ir : mr;
                    for (jr = 0; jr < nc; jr += nr) {
                        const float *b = Bp + jr * kc;
                        float *c = g->C + (ic + ir) * g->ldc + jc + jr;
                        size_t cols = nc - jr < nr ? nc - jr : nr, i, j;
                        if (rows == mr && cols == nr) {
                            k->ukernel(kc, a, b, c, g->ldc, acc);
                            continue;
                        }
                        k->ukernel(kc, a, b, tile, nr, 0);
                        for (i = 0; i < rows; i++)
                            for (j = 0; j < cols; j++)
                                c[i * g->ldc + j] =
                                    acc ? c[i * g->ldc + j] + tile[i * nr + j] : tile[i * nr + j];
                    }
                }
            }
        }
    }
}

static void fti__gemm_task(void *ctx, size_t begin, size_t end, int thread) {
    const fti__gemm_ctx *g = (const fti__gemm_ctx *)ctx;
    const fti_kernels *k = g->k;
    size_t m0 = 0, m1 = g->M, n0 = 0, n1 = g->N, kc, nc, mc;
    float *Ap, *Bp;
    (void)thread;
    if (g->split_n) {
        n0 = begin * k->nr;
        n1 = end * k->nr < g->N ? end * k->nr : g->N;
    } else {
        m0 = begin * k->mr;
        m1 = end * k->mr < g->M ? end * k->mr : g->M;
    }
    if (m0 >= m1 || n0 >= n1) return;
    kc = fti__gemm_kc(k, g->K);
    nc = n1 - n0 < k->nc ? n1 - n0 : k->nc;
    mc = m1 - m0 < k->mc ? m1 - m0 : k->mc;
    nc = (nc + k->nr - 1) / k->nr * k->nr;
    mc = (mc + k->mr - 1) / k->mr * k->mr;
    Ap = (float *)fti_aligned_alloc(mc * kc * sizeof(float) + 64, 64);
    Bp = (float *)fti_aligned_alloc(nc * kc * sizeof(float) + 64, 64);
    if (!Ap || !Bp) { /* out of memory: the reference needs none */
        fti__matmul_ref(g->flags, m1 - m0, n1 - n0, g->K,
                        g->flags & FTI_MM_TRANS_A ? g->A + m0 : g->A + m0 * g->lda, g->lda,
                        g->flags & FTI_MM_TRANS_B ? g->B + n0 * g->ldb : g->B + n0, g->ldb,
                        g->C + m0 * g->ldc + n0, g->ldc);
    } else {
        fti__gemm_block(g, m0, m1, n0, n1, Ap, Bp);
    }
    fti_aligned_free(Ap);
    fti_aligned_free(Bp);
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

void fti_matmul(const fti_kernels *k, fti_pool *pool, unsigned flags, size_t M, size_t N, size_t K,
                const float *A, size_t lda, const float *B, size_t ldb, float *C, size_t ldc) {
    fti__gemm_ctx g;
    size_t tiles_m, tiles_n, items, grain, work;
    k = fti__k(k);
    if (M == 0 || N == 0) return;
    if (K == 0) {
        size_t i;
        if (!(flags & FTI_MM_ACCUMULATE))
            for (i = 0; i < M; i++) memset(C + i * ldc, 0, N * sizeof(float));
        return;
    }
    if (M <= 4 && (flags & FTI_MM_TRANS_B) && !(flags & FTI_MM_TRANS_A)) {
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
    if (M == 1 && !(flags & FTI_MM_TRANS_B)) {
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
    tiles_m = (M + k->mr - 1) / k->mr;
    tiles_n = (N + k->nr - 1) / k->nr;
    /* split the dimension with more tiles (relative to its block size); never K */
    g.split_n = tiles_n * k->nr > tiles_m * k->mr * 2 && tiles_n >= 2;
    items = g.split_n ? tiles_n : tiles_m;
    work = (g.split_n ? k->nr * M : k->mr * N) * K; /* multiply-adds per item */
    grain = work ? (size_t)1 + (size_t)(1u << 20) / work : 1;
    fti_pool_for(pool, items, grain, fti__gemm_task, &g);
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
/* ---- end src/02_kernels.c ---- */
/* ---- begin src/02_kernels_isa_neon.c ---- */
/* === kernels: aarch64 NEON variants === */
/*
 * NEON is part of the aarch64 baseline, so this table needs no detection. It covers the GEMM
 * micro-kernel (8×12, fused multiply-add by lane), the f32/Q8_0/Q4_0 GEMV rows and activation
 * quantization, BLAS-1, the exp-based ops (softmax, SiLU, SwiGLU), softmax backward, AdamW and
 * fp16 rows; the RMSNorm backward row, bf16 rows and the weight quantizers use the references
 * (a small share of a training step).
 */
/* #include "02_kernels.h" (amalgamated) */

#if defined(FTI__NEON)
/* #include <arm_neon.h> (already included) */

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

static void fti__gemv_q8_0_neon(const void *W, size_t row_bytes, size_t rows, const int8_t *xq,
                                const float *xd, const int32_t *xs, size_t nb, float *y) {
    size_t r, b;
    (void)xs;
    for (r = 0; r < rows; r++) {
        const fti_block_q8_0 *w = (const fti_block_q8_0 *)((const char *)W + r * row_bytes);
        float32x4_t acc = vdupq_n_f32(0.0f);
        for (b = 0; b < nb; b++) {
            const int8_t *xb = xq + b * FTI_QK;
            int32x4_t d = fti__dot32_neon(vdupq_n_s32(0), vld1q_s8(w[b].qs), vld1q_s8(w[b].qs + 16),
                                          vld1q_s8(xb), vld1q_s8(xb + 16));
            acc = vfmaq_n_f32(acc, vcvtq_f32_s32(d), fti_f16_to_f32(w[b].d) * xd[b]);
        }
        y[r] = vaddvq_f32(acc);
    }
}

static void fti__gemv_q4_0_neon(const void *W, size_t row_bytes, size_t rows, const int8_t *xq,
                                const float *xd, const int32_t *xs, size_t nb, float *y) {
    size_t r, b;
    for (r = 0; r < rows; r++) {
        const fti_block_q4_0 *w = (const fti_block_q4_0 *)((const char *)W + r * row_bytes);
        float32x4_t acc = vdupq_n_f32(0.0f);
        for (b = 0; b < nb; b++) {
            const int8_t *xb = xq + b * FTI_QK;
            uint8x16_t q = vld1q_u8(w[b].qs);
            int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(15)));
            int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(q, 4));
            /* start from -2·Σx in each of the 4 lanes: the block's -8·Σx */
            int32x4_t d =
                fti__dot32_neon(vdupq_n_s32(-2 * xs[b]), lo, hi, vld1q_s8(xb), vld1q_s8(xb + 16));
            acc = vfmaq_n_f32(acc, vcvtq_f32_s32(d), fti_f16_to_f32(w[b].d) * xd[b]);
        }
        y[r] = vaddvq_f32(acc);
    }
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

FTI__DOTPROD static void fti__gemv_q8_0_sdot(const void *W, size_t row_bytes, size_t rows,
                                             const int8_t *xq, const float *xd, const int32_t *xs,
                                             size_t nb, float *y) {
    size_t r, b;
    (void)xs;
    for (r = 0; r < rows; r++) {
        const fti_block_q8_0 *w = (const fti_block_q8_0 *)((const char *)W + r * row_bytes);
        float32x4_t acc = vdupq_n_f32(0.0f);
        for (b = 0; b < nb; b++) {
            const int8_t *xb = xq + b * FTI_QK;
            int32x4_t d = vdotq_s32(vdupq_n_s32(0), vld1q_s8(w[b].qs), vld1q_s8(xb));
            d = vdotq_s32(d, vld1q_s8(w[b].qs + 16), vld1q_s8(xb + 16));
            acc = vfmaq_n_f32(acc, vcvtq_f32_s32(d), fti_f16_to_f32(w[b].d) * xd[b]);
        }
        y[r] = vaddvq_f32(acc);
    }
}

FTI__DOTPROD static void fti__gemv_q4_0_sdot(const void *W, size_t row_bytes, size_t rows,
                                             const int8_t *xq, const float *xd, const int32_t *xs,
                                             size_t nb, float *y) {
    size_t r, b;
    for (r = 0; r < rows; r++) {
        const fti_block_q4_0 *w = (const fti_block_q4_0 *)((const char *)W + r * row_bytes);
        float32x4_t acc = vdupq_n_f32(0.0f);
        for (b = 0; b < nb; b++) {
            const int8_t *xb = xq + b * FTI_QK;
            uint8x16_t q = vld1q_u8(w[b].qs);
            int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(15)));
            int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(q, 4));
            /* from -2·Σx in each of the 4 lanes: the block's -8·Σx */
            int32x4_t d = vdotq_s32(vdupq_n_s32(-2 * xs[b]), lo, vld1q_s8(xb));
            d = vdotq_s32(d, hi, vld1q_s8(xb + 16));
            acc = vfmaq_n_f32(acc, vcvtq_f32_s32(d), fti_f16_to_f32(w[b].d) * xd[b]);
        }
        y[r] = vaddvq_f32(acc);
    }
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
    fti__quantize_q8_0_ref,
    fti__quantize_q4_0_ref,
    fti__dequantize_q8_0_ref,
    fti__dequantize_q4_0_ref,
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
    fti__quantize_q8_0_ref,
    fti__quantize_q4_0_ref,
    fti__dequantize_q8_0_ref,
    fti__dequantize_q4_0_ref,
};

#endif

static const fti_kernels *fti__kernels_neon(void) {
#if defined(FTI__DOTPROD_OK)
    if (fti__cpu_features_neon() & FTI_CPU_DOTPROD) return &fti__kernels_neon_dot_table;
#endif
    return &fti__kernels_neon_table;
}
#endif /* FTI__NEON */
/* ---- end src/02_kernels_isa_neon.c ---- */
/* ---- begin src/02_kernels_isa_x86.c ---- */
/* === kernels: x86-64 AVX2+FMA and AVX-512 variants === */
/*
 * Every function here carries its own target attribute, so the file compiles without -mavx2
 * and the tables are only handed out after CPUID + XGETBV say the CPU and OS support them.
 */
/* #include "02_kernels.h" (amalgamated) */

#if defined(FTI__X86)
#if defined(__GNUC__) && !defined(__clang__)
/* g++ 12 warns inside its own AVX-512 headers (_mm512_undefined_* "used uninitialized") once
 * they are inlined: a known false positive, silenced for this section only. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
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
        __cpuid_count(7, 1, a, b, c, d);
        if (a & (1u << 5)) f |= FTI_CPU_AVX512BF16;
    }
    return f;
}

#define FTI__AVX2 __attribute__((target("avx2,fma,f16c")))
#define FTI__AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define FTI__VNNI                                                                                  \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx2,fma,f16c")))

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

FTI__AVX2 static void fti__gemv_f32_avx2(const void *W, size_t row_bytes, size_t rows,
                                         const float *x, size_t n, float *y, int acc) {
    size_t r;
    for (r = 0; r < rows; r++) {
        float s = fti__dot_avx2((const float *)((const char *)W + r * row_bytes), x, n);
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

/* Q8_0 · Q8 activations: |x| (unsigned) times w with x's sign (signed) through maddubs. */
FTI__AVX2 static void fti__gemv_q8_0_avx2(const void *W, size_t row_bytes, size_t rows,
                                          const int8_t *xq, const float *xd, const int32_t *xs,
                                          size_t nb, float *y) {
    const __m256i ones = _mm256_set1_epi16(1);
    size_t r, b;
    (void)xs;
    for (r = 0; r < rows; r++) {
        const fti_block_q8_0 *w = (const fti_block_q8_0 *)((const char *)W + r * row_bytes);
        __m256 acc = _mm256_setzero_ps();
        for (b = 0; b < nb; b++) {
            __m256i wv = _mm256_loadu_si256((const __m256i *)w[b].qs);
            __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + b * FTI_QK));
            __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(xv, xv), _mm256_sign_epi8(wv, xv));
            __m256 s = _mm256_set1_ps(_cvtsh_ss(w[b].d) * xd[b]);
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones)), s, acc);
        }
        y[r] = fti__hsum_avx2(acc);
    }
}

FTI__AVX2 static __m256i fti__q4_nibbles_avx2(const uint8_t *qs) {
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
    return _mm256_and_si256(v, _mm256_set1_epi8(15));
}

/* Q4_0: unsigned nibbles q times signed x, minus 8·Σx (spread over the 8 lanes as -Σx each). */
FTI__AVX2 static void fti__gemv_q4_0_avx2(const void *W, size_t row_bytes, size_t rows,
                                          const int8_t *xq, const float *xd, const int32_t *xs,
                                          size_t nb, float *y) {
    const __m256i ones = _mm256_set1_epi16(1);
    size_t r, b;
    for (r = 0; r < rows; r++) {
        const fti_block_q4_0 *w = (const fti_block_q4_0 *)((const char *)W + r * row_bytes);
        __m256 acc = _mm256_setzero_ps();
        for (b = 0; b < nb; b++) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + b * FTI_QK));
            __m256i p = _mm256_maddubs_epi16(fti__q4_nibbles_avx2(w[b].qs), xv);
            __m256i d = _mm256_add_epi32(_mm256_madd_epi16(p, ones), _mm256_set1_epi32(-xs[b]));
            __m256 s = _mm256_set1_ps(_cvtsh_ss(w[b].d) * xd[b]);
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), s, acc);
        }
        y[r] = fti__hsum_avx2(acc);
    }
}

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

FTI__AVX512 static void fti__ukernel_avx512(size_t kc, const float *a, const float *b, float *c,
                                            size_t ldc, int acc) {
    __m512 c0_0 = _mm512_setzero_ps(), c0_1 = c0_0, c1_0 = c0_0, c1_1 = c0_0, c2_0 = c0_0,
           c2_1 = c0_0, c3_0 = c0_0, c3_1 = c0_0, c4_0 = c0_0, c4_1 = c0_0, c5_0 = c0_0,
           c5_1 = c0_0, c6_0 = c0_0, c6_1 = c0_0, c7_0 = c0_0, c7_1 = c0_0, c8_0 = c0_0,
           c8_1 = c0_0, c9_0 = c0_0, c9_1 = c0_0, c10_0 = c0_0, c10_1 = c0_0, c11_0 = c0_0,
           c11_1 = c0_0, b0, b1, t;
    size_t p;
    for (p = 0; p < kc; p++, a += 12, b += 32) {
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

FTI__AVX512 static void fti__gemv_f32_avx512(const void *W, size_t row_bytes, size_t rows,
                                             const float *x, size_t n, float *y, int acc) {
    size_t r;
    for (r = 0; r < rows; r++) {
        float s = fti__dot_avx512((const float *)((const char *)W + r * row_bytes), x, n);
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

/* Q8_0 with VNNI: two blocks per zmm; dpbusd(|x|, w·sign(x)) gives 8 int32 partial sums per
 * block, scaled by the block's wd·xd in the matching half of the float accumulator. Four blocks
 * per step share one fp16 conversion of their scales. */
FTI__VNNI static __m512 fti__q8_pair_vnni(const fti_block_q8_0 *w, const int8_t *xq, __m512 sc,
                                          __m512 acc) {
    const __m512i zero = _mm512_setzero_si512();
    __m512i wv =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)w[0].qs)),
                           _mm256_loadu_si256((const __m256i *)w[1].qs), 1);
    __m512i xv = _mm512_loadu_si512((const void *)xq);
    __mmask64 neg = _mm512_movepi8_mask(xv);
    __m512i d =
        _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(xv), _mm512_mask_sub_epi8(wv, neg, zero, wv));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), sc, acc);
}

FTI__VNNI static void fti__gemv_q8_0_vnni(const void *W, size_t row_bytes, size_t rows,
                                               const int8_t *xq, const float *xd, const int32_t *xs,
                                               size_t nb, float *y) {
    const __m512i lo = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i hi = _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    size_t r, b;
    (void)xs;
    for (r = 0; r < rows; r++) {
        const fti_block_q8_0 *w = (const fti_block_q8_0 *)((const char *)W + r * row_bytes);
        __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
        float s;
        for (b = 0; b + 4 <= nb; b += 4) {
            __m512 s4 = _mm512_castps128_ps512(FTI__SCALES4(w, b, xd));
            acc0 = fti__q8_pair_vnni(w + b, xq + b * FTI_QK, _mm512_permutexvar_ps(lo, s4), acc0);
            acc1 = fti__q8_pair_vnni(w + b + 2, xq + (b + 2) * FTI_QK,
                                     _mm512_permutexvar_ps(hi, s4), acc1);
        }
        for (; b + 2 <= nb; b += 2) {
            __m512 sc = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(_cvtsh_ss(w[b].d) * xd[b]),
                                             _mm512_set1_ps(_cvtsh_ss(w[b + 1].d) * xd[b + 1]));
            acc0 = fti__q8_pair_vnni(w + b, xq + b * FTI_QK, sc, acc0);
        }
        s = fti__hsum_avx512(_mm512_add_ps(acc0, acc1));
        if (b < nb) {
            __m256i wv = _mm256_loadu_si256((const __m256i *)w[b].qs);
            __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + b * FTI_QK));
            __m256i d = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(xv),
                                            _mm256_sign_epi8(wv, xv));
            s += (float)fti__hsum_epi32_avx2(d) * (_cvtsh_ss(w[b].d) * xd[b]);
        }
        y[r] = s;
    }
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

/* Q4_0 with VNNI + VBMI, four blocks (72 bytes) per step: two loads (the second masked to the
 * 8 bytes that belong to the group, so nothing past the row is read), vpermt2b gathers the 4×16
 * nibble bytes and vpermb the 4 fp16 scales; low nibbles (elements 0..15 of each block) and high
 * nibbles (16..31) each make one dpbusd against x rearranged once per call to match, giving 4
 * int32 lanes per block. Q4_0's -8 offset is applied in float: Σ_b wd·(-8·xd·Σx) per row, with
 * -8·xd·Σx precomputed per block. */
FTI__VNNI static void fti__gemv_q4_0_vnni(const void *W, size_t row_bytes, size_t rows,
                                          const int8_t *xq, const float *xd, const int32_t *xs,
                                          size_t nb, float *y) {
    int8_t xr[FTI__Q4_STACK_GROUPS * 128];
    float corr[FTI__Q4_STACK_GROUPS * 4];
    size_t ng = nb / 4, g, r, b, j;
    __m512i idx_q, idx_d;
    const __m512i idx4 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512i m4 = _mm512_set1_epi8(15);
    unsigned char iq[64], id[64];
    if (ng > FTI__Q4_STACK_GROUPS) {
        fti__gemv_q4_0_vnni_pairs(W, row_bytes, rows, xq, xd, xs, nb, y);
        return;
    }
    for (j = 0; j < 64; j++) {
        iq[j] = (unsigned char)(18 * (j / 16) + 2 + j % 16);       /* qs bytes of block j/16 */
        id[j] = (unsigned char)(j < 8 ? 18 * (j / 2) + j % 2 : 0); /* the four fp16 scales */
    }
    idx_q = _mm512_loadu_si512((const void *)iq);
    idx_d = _mm512_loadu_si512((const void *)id);
    for (g = 0; g < ng; g++) { /* x of 4 blocks as [x0[0:16] x1[0:16] x2[0:16] x3[0:16]] + highs */
        for (j = 0; j < 4; j++) {
            memcpy(xr + g * 128 + j * 16, xq + (g * 4 + j) * FTI_QK, 16);
            memcpy(xr + g * 128 + 64 + j * 16, xq + (g * 4 + j) * FTI_QK + 16, 16);
            corr[g * 4 + j] = -8.0f * xd[g * 4 + j] * (float)xs[g * 4 + j];
        }
    }
    for (r = 0; r < rows; r++) {
        const fti_block_q4_0 *w = (const fti_block_q4_0 *)((const char *)W + r * row_bytes);
        const unsigned char *wb = (const unsigned char *)w;
        __m512 acc = _mm512_setzero_ps();
        __m128 cacc = _mm_setzero_ps();
        float s;
        for (g = 0; g < ng; g++, wb += 72) {
            __m512i l0 = _mm512_loadu_si512((const void *)wb);
            __m512i l1 = _mm512_maskz_loadu_epi8((__mmask64)0xff, (const void *)(wb + 64));
            __m512i q = _mm512_permutex2var_epi8(l0, idx_q, l1);
            __m512i lo = _mm512_and_si512(q, m4),
                    hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
            __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo,
                                            _mm512_loadu_si512((const void *)(xr + g * 128)));
            __m128 wd = _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi8(idx_d, l0)));
            __m128 s4 = _mm_mul_ps(wd, _mm_loadu_ps(xd + g * 4));
            d = _mm512_dpbusd_epi32(d, hi, _mm512_loadu_si512((const void *)(xr + g * 128 + 64)));
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d),
                                  _mm512_permutexvar_ps(idx4, _mm512_castps128_ps512(s4)), acc);
            cacc = _mm_fmadd_ps(wd, _mm_loadu_ps(corr + g * 4), cacc);
        }
        s = fti__hsum_avx512(acc);
        cacc = _mm_add_ps(cacc, _mm_movehl_ps(cacc, cacc));
        cacc = _mm_add_ss(cacc, _mm_movehdup_ps(cacc));
        s += _mm_cvtss_f32(cacc);
        for (b = ng * 4; b < nb; b++) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + b * FTI_QK));
            __m256i d =
                _mm256_dpbusd_epi32(_mm256_set1_epi32(-xs[b]), fti__q4_nibbles_avx2(w[b].qs), xv);
            s += (float)fti__hsum_epi32_avx2(d) * (_cvtsh_ss(w[b].d) * xd[b]);
        }
        y[r] = s;
    }
}

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
    fti__quantize_q8_0_ref,
    fti__quantize_q4_0_ref,
    fti__dequantize_q8_0_ref,
    fti__dequantize_q4_0_ref,
};

static const fti_kernels *fti__kernels_avx2(void) { return &fti__kernels_avx2_table; }

#if !defined(FTI_NO_AVX512)
/* Two AVX-512 tables: with VNNI and VBMI (Ice Lake, Zen 4+) the quantized dots use vpdpbusd
 * (and vpermb to unpack Q4_0). */
static const fti_kernels fti__kernels_avx512_table = {
    FTI_ISA_AVX512,
    "avx512",
    12,
    32,
    384,
    120,
    512,
    fti__ukernel_avx512,
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
    fti__quantize_q8_0_ref,
    fti__quantize_q4_0_ref,
    fti__dequantize_q8_0_ref,
    fti__dequantize_q4_0_ref,
};

static const fti_kernels fti__kernels_avx512vnni_table = {
    FTI_ISA_AVX512,
    "avx512",
    12,
    32,
    384,
    120,
    512,
    fti__ukernel_avx512,
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
    fti__quantize_q8_0_ref,
    fti__quantize_q4_0_ref,
    fti__dequantize_q8_0_ref,
    fti__dequantize_q4_0_ref,
};
#endif

static const fti_kernels *fti__kernels_avx512(unsigned features) {
#if !defined(FTI_NO_AVX512)
    const unsigned need = FTI_CPU_AVX512F | FTI_CPU_AVX512BW | FTI_CPU_AVX512VL | FTI_CPU_AVX2 |
                          FTI_CPU_FMA | FTI_CPU_F16C;
    if ((features & need) != need) return NULL;
    if ((features & (FTI_CPU_AVX512VNNI | FTI_CPU_AVX512VBMI)) ==
        (FTI_CPU_AVX512VNNI | FTI_CPU_AVX512VBMI))
        return &fti__kernels_avx512vnni_table;
    return &fti__kernels_avx512_table;
#endif
    (void)features;
    return NULL;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif /* FTI__X86 */
/* ---- end src/02_kernels_isa_x86.c ---- */
/* ---- begin src/02_kernels_select.c ---- */
/* === kernels: CPU detection and dispatch === */
/* Last of the kernels files: it sees every table defined before it. */
/* #include "02_kernels.h" (amalgamated) */

/* #include <stdlib.h> (already included) */
/* #include <string.h> (already included) */

unsigned fti_cpu_features(void) {
#if defined(FTI__X86)
    return fti__cpu_features_x86();
#elif defined(FTI__NEON)
    return fti__cpu_features_neon();
#else
    return 0;
#endif
}

const char *fti_isa_name(fti_isa isa) {
    switch (isa) {
    case FTI_ISA_AUTO: return "auto";
    case FTI_ISA_SCALAR: return "scalar";
    case FTI_ISA_AVX2: return "avx2";
    case FTI_ISA_AVX512: return "avx512";
    case FTI_ISA_NEON: return "neon";
    }
    return "?";
}

static const fti_kernels *fti__kernels_exact(fti_isa isa) {
    switch (isa) {
    case FTI_ISA_SCALAR: return &fti__kernels_scalar;
#if defined(FTI__X86)
    case FTI_ISA_AVX2:
        return ((fti__cpu_features_x86() & (FTI_CPU_AVX2 | FTI_CPU_FMA | FTI_CPU_F16C)) ==
                (FTI_CPU_AVX2 | FTI_CPU_FMA | FTI_CPU_F16C))
                   ? fti__kernels_avx2()
                   : NULL;
    case FTI_ISA_AVX512: return fti__kernels_avx512(fti__cpu_features_x86());
#endif
#if defined(FTI__NEON)
    case FTI_ISA_NEON: return fti__kernels_neon();
#endif
    default: return NULL;
    }
}

const fti_kernels *fti_kernels_get(fti_isa isa) {
    static const fti_isa order[] = {FTI_ISA_AVX512, FTI_ISA_AVX2, FTI_ISA_NEON};
    const fti_kernels *k;
    const char *env;
    size_t i;
    if (isa != FTI_ISA_AUTO) return fti__kernels_exact(isa);
    env = getenv("FTI_ISA");
    if (env && *env) {
        for (i = FTI_ISA_SCALAR; i <= FTI_ISA_NEON; i++)
            if (strcmp(env, fti_isa_name((fti_isa)i)) == 0 && (k = fti__kernels_exact((fti_isa)i)))
                return k;
    }
    for (i = 0; i < sizeof order / sizeof order[0]; i++)
        if ((k = fti__kernels_exact(order[i])) != NULL) return k;
    return &fti__kernels_scalar;
}

fti_isa fti_kernels_isa(const fti_kernels *k) {
    if (!k) k = fti_kernels_get(FTI_ISA_AUTO);
    return k->isa;
}

char *fti_cpu_describe(char *out, size_t n) {
    static const char *names[] = {"avx2",       "fma",      "f16c",     "avx512f",
                                  "avx512bw",   "avx512vl", "avx512dq", "avx512vnni",
                                  "avx512bf16", "neon",     "dotprod",  "avx512vbmi"};
    unsigned f = fti_cpu_features();
    fti_buf b;
    size_t i;
    memset(&b, 0, sizeof b);
    fti_buf_puts(&b, "cpu:");
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (f & (1u << i)) fti_buf_printf(&b, " %s", names[i]);
    if (!f) fti_buf_puts(&b, " (no simd)");
    fti_buf_puts(&b, " | tables:");
    for (i = FTI_ISA_SCALAR; i <= FTI_ISA_NEON; i++)
        if (fti__kernels_exact((fti_isa)i)) fti_buf_printf(&b, " %s", fti_isa_name((fti_isa)i));
    fti_buf_printf(&b, " | auto: %s", fti_kernels_get(FTI_ISA_AUTO)->name);
    if (n > 0) {
        size_t len = b.data && !b.oom ? b.len : 0;
        if (len >= n) len = n - 1;
        if (len) memcpy(out, b.data, len);
        out[len] = 0;
    }
    fti_buf_free(&b);
    return out;
}
/* ---- end src/02_kernels_select.c ---- */
/* ---- begin src/03_tables.c ---- */
/* === tokenizer: Unicode classes (generated by tools/gen_unicode_tables.py; do not edit) === */
/* Unicode 14.0.0 (Python unicodedata) + the 15.0-16.0 additions tiktoken uses. Classes: 0=OTHER 1=LU 2=LL 3=LT 4=LM 5=LO 6=M 7=N 8=WS. */
#ifndef FTI__UC_TABLES
#define FTI__UC_TABLES
#define FTI__UC_OTHER 0
#define FTI__UC_LU 1
#define FTI__UC_LL 2
#define FTI__UC_LT 3
#define FTI__UC_LM 4
#define FTI__UC_LO 5
#define FTI__UC_M 6
#define FTI__UC_N 7
#define FTI__UC_WS 8
#define FTI__UC_VERSION "14.0.0"

/* Class of each code point below U+0800. */
static const unsigned char fti__uc_small[0x800] = {
    0,0,0,0,0,0,0,0,0,8,8,8,8,8,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    8,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,7,7,7,7,7,7,7,7,7,7,0,0,0,0,0,0,
    0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,0,0,0,0,0,
    0,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,0,0,0,0,0,
    0,0,0,0,0,8,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    8,0,0,0,0,0,0,0,0,0,5,0,0,0,0,0,0,0,7,7,0,2,0,0,0,7,5,0,7,7,7,0,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,0,1,1,1,1,1,1,1,2,
    2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,0,2,2,2,2,2,2,2,2,
    1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,
    1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,2,1,2,1,2,1,2,1,
    2,1,2,1,2,1,2,1,2,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,
    1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,1,2,1,2,1,2,2,
    2,1,1,2,1,2,1,1,2,1,1,1,2,2,1,1,1,1,2,1,1,2,1,1,1,2,2,2,1,1,2,1,
    1,2,1,2,1,2,1,1,2,1,2,2,1,2,1,1,2,1,1,1,2,1,2,1,1,2,2,5,1,2,2,2,
    5,5,5,5,1,3,2,1,3,2,1,3,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,2,1,2,
    1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,2,1,3,2,1,2,1,1,1,2,1,2,1,2,1,2,
    1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,
    1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,2,2,2,2,2,2,1,1,2,1,1,2,
    2,1,2,1,1,1,1,2,1,2,1,2,1,2,1,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
    2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
    2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,5,2,2,2,2,2,2,2,2,2,2,2,
    2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,
    4,4,0,0,0,0,4,4,4,4,4,4,4,4,4,4,4,4,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    4,4,4,4,4,0,0,0,0,0,0,0,4,0,4,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,
    6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,
    6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,
    6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,1,2,1,2,4,0,1,2,0,0,4,2,2,2,0,1,
    0,0,0,0,0,0,1,0,1,1,1,0,1,0,1,1,2,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,0,1,1,1,1,1,1,1,1,1,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
    2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,1,2,2,1,1,1,2,2,2,1,2,1,2,1,2,1,2,
    1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,2,2,2,2,1,2,0,1,2,1,1,2,2,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
    2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
    1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,
    1,2,0,6,6,6,6,6,6,6,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,
    1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,
    1,1,2,1,2,1,2,1,2,1,2,1,2,1,2,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,
    1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,
    1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,
    1,2,1,2,1,2,1,2,1,2,1,2,1,2,1,2,0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,0,0,4,0,0,0,0,0,0,
    2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
    2,2,2,2,2,2,2,2,2,0,0,0,0,0,0,0,0,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,
    6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,0,6,
    0,6,6,0,6,6,0,6,0,0,0,0,0,0,0,0,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,
    5,5,5,5,5,5,5,5,5,5,5,0,0,0,0,5,5,5,5,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,6,6,6,6,6,6,6,6,6,6,6,0,0,0,0,0,
    5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,
    4,5,5,5,5,5,5,5,5,5,5,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,
    7,7,7,7,7,7,7,7,7,7,0,0,0,0,5,5,6,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,
    5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,
    5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,
    5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,0,5,6,6,6,6,6,6,6,0,0,6,
    6,6,6,6,6,4,4,6,6,0,6,6,6,6,5,5,7,7,7,7,7,7,7,7,7,7,5,5,5,0,0,5,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,5,6,5,5,5,5,5,5,5,5,5,5,5,5,5,5,
    5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,
    6,6,6,6,6,6,6,6,6,6,6,0,0,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,
    5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,
    5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,
    5,5,5,5,5,5,6,6,6,6,6,6,6,6,6,6,6,5,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    7,7,7,7,7,7,7,7,7,7,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,
    5,5,5,5,5,5,5,5,5,5,5,6,6,6,6,6,6,6,6,6,4,4,0,0,0,0,4,0,0,6,0,0,
};

/* Runs of equal class: (first code point << 4) | class, ascending. */
#define FTI__UC_N_RUNS 3229
static const uint32_t fti__uc_runs[FTI__UC_N_RUNS] = {
    0x0000000u, 0x0000098u, 0x00000e0u, 0x0000208u, 0x0000210u, 0x0000307u, 0x00003a0u, 0x0000411u,
    0x00005b0u, 0x0000612u, 0x00007b0u, 0x0000858u, 0x0000860u, 0x0000a08u, 0x0000a10u, 0x0000aa5u,
    0x0000ab0u, 0x0000b27u, 0x0000b40u, 0x0000b52u, 0x0000b60u, 0x0000b97u, 0x0000ba5u, 0x0000bb0u,
    0x0000bc7u, 0x0000bf0u, 0x0000c01u, 0x0000d70u, 0x0000d81u, 0x0000df2u, 0x0000f70u, 0x0000f82u,
    0x0001001u, 0x0001012u, 0x0001021u, 0x0001032u, 0x0001041u, 0x0001052u, 0x0001061u, 0x0001072u,
    0x0001081u, 0x0001092u, 0x00010a1u, 0x00010b2u, 0x00010c1u, 0x00010d2u, 0x00010e1u, 0x00010f2u,
    0x0001101u, 0x0001112u, 0x0001121u, 0x0001132u, 0x0001141u, 0x0001152u, 0x0001161u, 0x0001172u,
    0x0001181u, 0x0001192u, 0x00011a1u, 0x00011b2u, 0x00011c1u, 0x00011d2u, 0x00011e1u, 0x00011f2u,
    0x0001201u, 0x0001212u, 0x0001221u, 0x0001232u, 0x0001241u, 0x0001252u, 0x0001261u, 0x0001272u,
    0x0001281u, 0x0001292u, 0x00012a1u, 0x00012b2u, 0x00012c1u, 0x00012d2u, 0x00012e1u, 0x00012f2u,
    0x0001301u, 0x0001312u, 0x0001321u, 0x0001332u, 0x0001341u, 0x0001352u, 0x0001361u, 0x0001372u,
    0x0001391u, 0x00013a2u, 0x00013b1u, 0x00013c2u, 0x00013d1u, 0x00013e2u, 0x00013f1u, 0x0001402u,
    0x0001411u, 0x0001422u, 0x0001431u, 0x0001442u, 0x0001451u, 0x0001462u, 0x0001471u, 0x0001482u,
    0x00014a1u, 0x00014b2u, 0x00014c1u, 0x00014d2u, 0x00014e1u, 0x00014f2u, 0x0001501u, 0x0001512u,
    0x0001521u, 0x0001532u, 0x0001541u, 0x0001552u, 0x0001561u, 0x0001572u, 0x0001581u, 0x0001592u,
    0x00015a1u, 0x00015b2u, 0x00015c1u, 0x00015d2u, 0x00015e1u, 0x00015f2u, 0x0001601u, 0x0001612u,
    0x0001621u, 0x0001632u, 0x0001641u, 0x0001652u, 0x0001661u, 0x0001672u, 0x0001681u, 0x0001692u,
    0x00016a1u, 0x00016b2u, 0x00016c1u, 0x00016d2u, 0x00016e1u, 0x00016f2u, 0x0001701u, 0x0001712u,
    0x0001721u, 0x0001732u, 0x0001741u, 0x0001752u, 0x0001761u, 0x0001772u, 0x0001781u, 0x00017a2u,
    0x00017b1u, 0x00017c2u, 0x00017d1u, 0x00017e2u, 0x0001811u, 0x0001832u, 0x0001841u, 0x0001852u,
    0x0001861u, 0x0001882u, 0x0001891u, 0x00018c2u, 0x00018e1u, 0x0001922u, 0x0001931u, 0x0001952u,
    0x0001961u, 0x0001992u, 0x00019c1u, 0x00019e2u, 0x00019f1u, 0x0001a12u, 0x0001a21u, 0x0001a32u,
    0x0001a41u, 0x0001a52u, 0x0001a61u, 0x0001a82u, 0x0001a91u, 0x0001aa2u, 0x0001ac1u, 0x0001ad2u,
    0x0001ae1u, 0x0001b02u, 0x0001b11u, 0x0001b42u, 0x0001b51u, 0x0001b62u, 0x0001b71u, 0x0001b92u,
    0x0001bb5u, 0x0001bc1u, 0x0001bd2u, 0x0001c05u, 0x0001c41u, 0x0001c53u, 0x0001c62u, 0x0001c71u,
    0x0001c83u, 0x0001c92u, 0x0001ca1u, 0x0001cb3u, 0x0001cc2u, 0x0001cd1u, 0x0001ce2u, 0x0001cf1u,
    0x0001d02u, 0x0001d11u, 0x0001d22u, 0x0001d31u, 0x0001d42u, 0x0001d51u, 0x0001d62u, 0x0001d71u,
    0x0001d82u, 0x0001d91u, 0x0001da2u, 0x0001db1u, 0x0001dc2u, 0x0001de1u, 0x0001df2u, 0x0001e01u,
    0x0001e12u, 0x0001e21u, 0x0001e32u, 0x0001e41u, 0x0001e52u, 0x0001e61u, 0x0001e72u, 0x0001e81u,
    0x0001e92u, 0x0001ea1u, 0x0001eb2u, 0x0001ec1u, 0x0001ed2u, 0x0001ee1u, 0x0001ef2u, 0x0001f11u,
    0x0001f23u, 0x0001f32u, 0x0001f41u, 0x0001f52u, 0x0001f61u, 0x0001f92u, 0x0001fa1u, 0x0001fb2u,
    0x0001fc1u, 0x0001fd2u, 0x0001fe1u, 0x0001ff2u, 0x0002001u, 0x0002012u, 0x0002021u, 0x0002032u,
    0x0002041u, 0x0002052u, 0x0002061u, 0x0002072u, 0x0002081u, 0x0002092u, 0x00020a1u, 0x00020b2u,
    0x00020c1u, 0x00020d2u, 0x00020e1u, 0x00020f2u, 0x0002101u, 0x0002112u, 0x0002121u, 0x0002132u,
    0x0002141u, 0x0002152u, 0x0002161u, 0x0002172u, 0x0002181u, 0x0002192u, 0x00021a1u, 0x00021b2u,
    0x00021c1u, 0x00021d2u, 0x00021e1u, 0x00021f2u, 0x0002201u, 0x0002212u, 0x0002221u, 0x0002232u,
    0x0002241u, 0x0002252u, 0x0002261u, 0x0002272u, 0x0002281u, 0x0002292u, 0x00022a1u, 0x00022b2u,
    0x00022c1u, 0x00022d2u, 0x00022e1u, 0x00022f2u, 0x0002301u, 0x0002312u, 0x0002321u, 0x0002332u,
    0x00023a1u, 0x00023c2u, 0x00023d1u, 0x00023f2u, 0x0002411u, 0x0002422u, 0x0002431u, 0x0002472u,
    0x0002481u, 0x0002492u, 0x00024a1u, 0x00024b2u, 0x00024c1u, 0x00024d2u, 0x00024e1u, 0x00024f2u,
    0x0002945u, 0x0002952u, 0x0002b04u, 0x0002c20u, 0x0002c64u, 0x0002d20u, 0x0002e04u, 0x0002e50u,
    0x0002ec4u, 0x0002ed0u, 0x0002ee4u, 0x0002ef0u, 0x0003006u, 0x0003701u, 0x0003712u, 0x0003721u,
    0x0003732u, 0x0003744u, 0x0003750u, 0x0003761u, 0x0003772u, 0x0003780u, 0x00037a4u, 0x00037b2u,
    0x00037e0u, 0x00037f1u, 0x0003800u, 0x0003861u, 0x0003870u, 0x0003881u, 0x00038b0u, 0x00038c1u,
    0x00038d0u, 0x00038e1u, 0x0003902u, 0x0003911u, 0x0003a20u, 0x0003a31u, 0x0003ac2u, 0x0003cf1u,
    0x0003d02u, 0x0003d21u, 0x0003d52u, 0x0003d81u, 0x0003d92u, 0x0003da1u, 0x0003db2u, 0x0003dc1u,
    0x0003dd2u, 0x0003de1u, 0x0003df2u, 0x0003e01u, 0x0003e12u, 0x0003e21u, 0x0003e32u, 0x0003e41u,
    0x0003e52u, 0x0003e61u, 0x0003e72u, 0x0003e81u, 0x0003e92u, 0x0003ea1u, 0x0003eb2u, 0x0003ec1u,
    0x0003ed2u, 0x0003ee1u, 0x0003ef2u, 0x0003f41u, 0x0003f52u, 0x0003f60u, 0x0003f71u, 0x0003f82u,
    0x0003f91u, 0x0003fb2u, 0x0003fd1u, 0x0004302u, 0x0004601u, 0x0004612u, 0x0004621u, 0x0004632u,
    0x0004641u, 0x0004652u, 0x0004661u, 0x0004672u, 0x0004681u, 0x0004692u, 0x00046a1u, 0x00046b2u,
    0x00046c1u, 0x00046d2u, 0x00046e1u, 0x00046f2u, 0x0004701u, 0x0004712u, 0x0004721u, 0x0004732u,
    0x0004741u, 0x0004752u, 0x0004761u, 0x0004772u, 0x0004781u, 0x0004792u, 0x00047a1u, 0x00047b2u,
    0x00047c1u, 0x00047d2u, 0x00047e1u, 0x00047f2u, 0x0004801u, 0x0004812u, 0x0004820u, 0x0004836u,
    0x00048a1u, 0x00048b2u, 0x00048c1u, 0x00048d2u, 0x00048e1u, 0x00048f2u, 0x0004901u, 0x0004912u,
    0x0004921u, 0x0004932u, 0x0004941u, 0x0004952u, 0x0004961u, 0x0004972u, 0x0004981u, 0x0004992u,
    0x00049a1u, 0x00049b2u, 0x00049c1u, 0x00049d2u, 0x00049e1u, 0x00049f2u, 0x0004a01u, 0x0004a12u,
    0x0004a21u, 0x0004a32u, 0x0004a41u, 0x0004a52u, 0x0004a61u, 0x0004a72u, 0x0004a81u, 0x0004a92u,
    0x0004aa1u, 0x0004ab2u, 0x0004ac1u, 0x0004ad2u, 0x0004ae1u, 0x0004af2u, 0x0004b01u, 0x0004b12u,
    0x0004b21u, 0x0004b32u, 0x0004b41u, 0x0004b52u, 0x0004b61u, 0x0004b72u, 0x0004b81u, 0x0004b92u,
    0x0004ba1u, 0x0004bb2u, 0x0004bc1u, 0x0004bd2u, 0x0004be1u, 0x0004bf2u, 0x0004c01u, 0x0004c22u,
    0x0004c31u, 0x0004c42u, 0x0004c51u, 0x0004c62u, 0x0004c71u, 0x0004c82u, 0x0004c91u, 0x0004ca2u,
    0x0004cb1u, 0x0004cc2u, 0x0004cd1u, 0x0004ce2u, 0x0004d01u, 0x0004d12u, 0x0004d21u, 0x0004d32u,
    0x0004d41u, 0x0004d52u, 0x0004d61u, 0x0004d72u, 0x0004d81u, 0x0004d92u, 0x0004da1u, 0x0004db2u,
    0x0004dc1u, 0x0004dd2u, 0x0004de1u, 0x0004df2u, 0x0004e01u, 0x0004e12u, 0x0004e21u, 0x0004e32u,
    0x0004e41u, 0x0004e52u, 0x0004e61u, 0x0004e72u, 0x0004e81u, 0x0004e92u, 0x0004ea1u, 0x0004eb2u,
    0x0004ec1u, 0x0004ed2u, 0x0004ee1u, 0x0004ef2u, 0x0004f01u, 0x0004f12u, 0x0004f21u, 0x0004f32u,
    0x0004f41u, 0x0004f52u, 0x0004f61u, 0x0004f72u, 0x0004f81u, 0x0004f92u, 0x0004fa1u, 0x0004fb2u,
    0x0004fc1u, 0x0004fd2u, 0x0004fe1u, 0x0004ff2u, 0x0005001u, 0x0005012u, 0x0005021u, 0x0005032u,
    0x0005041u, 0x0005052u, 0x0005061u, 0x0005072u, 0x0005081u, 0x0005092u, 0x00050a1u, 0x00050b2u,
    0x00050c1u, 0x00050d2u, 0x00050e1u, 0x00050f2u, 0x0005101u, 0x0005112u, 0x0005121u, 0x0005132u,
    0x0005141u, 0x0005152u, 0x0005161u, 0x0005172u, 0x0005181u, 0x0005192u, 0x00051a1u, 0x00051b2u,
    0x00051c1u, 0x00051d2u, 0x00051e1u, 0x00051f2u, 0x0005201u, 0x0005212u, 0x0005221u, 0x0005232u,
    0x0005241u, 0x0005252u, 0x0005261u, 0x0005272u, 0x0005281u, 0x0005292u, 0x00052a1u, 0x00052b2u,
    0x00052c1u, 0x00052d2u, 0x00052e1u, 0x00052f2u, 0x0005300u, 0x0005311u, 0x0005570u, 0x0005594u,
    0x00055a0u, 0x0005602u, 0x0005890u, 0x0005916u, 0x0005be0u, 0x0005bf6u, 0x0005c00u, 0x0005c16u,
    0x0005c30u, 0x0005c46u, 0x0005c60u, 0x0005c76u, 0x0005c80u, 0x0005d05u, 0x0005eb0u, 0x0005ef5u,
    0x0005f30u, 0x0006106u, 0x00061b0u, 0x0006205u, 0x0006404u, 0x0006415u, 0x00064b6u, 0x0006607u,
    0x00066a0u, 0x00066e5u, 0x0006706u, 0x0006715u, 0x0006d40u, 0x0006d55u, 0x0006d66u, 0x0006dd0u,
    0x0006df6u, 0x0006e54u, 0x0006e76u, 0x0006e90u, 0x0006ea6u, 0x0006ee5u, 0x0006f07u, 0x0006fa5u,
    0x0006fd0u, 0x0006ff5u, 0x0007000u, 0x0007105u, 0x0007116u, 0x0007125u, 0x0007306u, 0x00074b0u,
    0x00074d5u, 0x0007a66u, 0x0007b15u, 0x0007b20u, 0x0007c07u, 0x0007ca5u, 0x0007eb6u, 0x0007f44u,
    0x0007f60u, 0x0007fa4u, 0x0007fb0u, 0x0007fd6u, 0x0007fe0u, 0x0008005u, 0x0008166u, 0x00081a4u,
    0x00081b6u, 0x0008244u, 0x0008256u, 0x0008284u, 0x0008296u, 0x00082e0u, 0x0008405u, 0x0008596u,
    0x00085c0u, 0x0008605u, 0x00086b0u, 0x0008705u, 0x0008880u, 0x0008895u, 0x00088f0u, 0x0008976u,
    0x0008a05u, 0x0008c94u, 0x0008ca6u, 0x0008e20u, 0x0008e36u, 0x0009045u, 0x00093a6u, 0x00093d5u,
    0x00093e6u, 0x0009505u, 0x0009516u, 0x0009585u, 0x0009626u, 0x0009640u, 0x0009667u, 0x0009700u,
    0x0009714u, 0x0009725u, 0x0009816u, 0x0009840u, 0x0009855u, 0x00098d0u, 0x00098f5u, 0x0009910u,
    0x0009935u, 0x0009a90u, 0x0009aa5u, 0x0009b10u, 0x0009b25u, 0x0009b30u, 0x0009b65u, 0x0009ba0u,
    0x0009bc6u, 0x0009bd5u, 0x0009be6u, 0x0009c50u, 0x0009c76u, 0x0009c90u, 0x0009cb6u, 0x0009ce5u,
    0x0009cf0u, 0x0009d76u, 0x0009d80u, 0x0009dc5u, 0x0009de0u, 0x0009df5u, 0x0009e26u, 0x0009e40u,
    0x0009e67u, 0x0009f05u, 0x0009f20u, 0x0009f47u, 0x0009fa0u, 0x0009fc5u, 0x0009fd0u, 0x0009fe6u,
    0x0009ff0u, 0x000a016u, 0x000a040u, 0x000a055u, 0x000a0b0u, 0x000a0f5u, 0x000a110u, 0x000a135u,
    0x000a290u, 0x000a2a5u, 0x000a310u, 0x000a325u, 0x000a340u, 0x000a355u, 0x000a370u, 0x000a385u,
    0x000a3a0u, 0x000a3c6u, 0x000a3d0u, 0x000a3e6u, 0x000a430u, 0x000a476u, 0x000a490u, 0x000a4b6u,
    0x000a4e0u, 0x000a516u, 0x000a520u, 0x000a595u, 0x000a5d0u, 0x000a5e5u, 0x000a5f0u, 0x000a667u,
    0x000a706u, 0x000a725u, 0x000a756u, 0x000a760u, 0x000a816u, 0x000a840u, 0x000a855u, 0x000a8e0u,
    0x000a8f5u, 0x000a920u, 0x000a935u, 0x000aa90u, 0x000aaa5u, 0x000ab10u, 0x000ab25u, 0x000ab40u,
    0x000ab55u, 0x000aba0u, 0x000abc6u, 0x000abd5u, 0x000abe6u, 0x000ac60u, 0x000ac76u, 0x000aca0u,
    0x000acb6u, 0x000ace0u, 0x000ad05u, 0x000ad10u, 0x000ae05u, 0x000ae26u, 0x000ae40u, 0x000ae67u,
    0x000af00u, 0x000af95u, 0x000afa6u, 0x000b000u, 0x000b016u, 0x000b040u, 0x000b055u, 0x000b0d0u,
    0x000b0f5u, 0x000b110u, 0x000b135u, 0x000b290u, 0x000b2a5u, 0x000b310u, 0x000b325u, 0x000b340u,
    0x000b355u, 0x000b3a0u, 0x000b3c6u, 0x000b3d5u, 0x000b3e6u, 0x000b450u, 0x000b476u, 0x000b490u,
    0x000b4b6u, 0x000b4e0u, 0x000b556u, 0x000b580u, 0x000b5c5u, 0x000b5e0u, 0x000b5f5u, 0x000b626u,
    0x000b640u, 0x000b667u, 0x000b700u, 0x000b715u, 0x000b727u, 0x000b780u, 0x000b826u, 0x000b835u,
    0x000b840u, 0x000b855u, 0x000b8b0u, 0x000b8e5u, 0x000b910u, 0x000b925u, 0x000b960u, 0x000b995u,
    0x000b9b0u, 0x000b9c5u, 0x000b9d0u, 0x000b9e5u, 0x000ba00u, 0x000ba35u, 0x000ba50u, 0x000ba85u,
    0x000bab0u, 0x000bae5u, 0x000bba0u, 0x000bbe6u, 0x000bc30u, 0x000bc66u, 0x000bc90u, 0x000bca6u,
    0x000bce0u, 0x000bd05u, 0x000bd10u, 0x000bd76u, 0x000bd80u, 0x000be67u, 0x000bf30u, 0x000c006u,
    0x000c055u, 0x000c0d0u, 0x000c0e5u, 0x000c110u, 0x000c125u, 0x000c290u, 0x000c2a5u, 0x000c3a0u,
    0x000c3c6u, 0x000c3d5u, 0x000c3e6u, 0x000c450u, 0x000c466u, 0x000c490u, 0x000c4a6u, 0x000c4e0u,
    0x000c556u, 0x000c570u, 0x000c585u, 0x000c5b0u, 0x000c5d5u, 0x000c5e0u, 0x000c605u, 0x000c626u,
    0x000c640u, 0x000c667u, 0x000c700u, 0x000c787u, 0x000c7f0u, 0x000c805u, 0x000c816u, 0x000c840u,
    0x000c855u, 0x000c8d0u, 0x000c8e5u, 0x000c910u, 0x000c925u, 0x000ca90u, 0x000caa5u, 0x000cb40u,
    0x000cb55u, 0x000cba0u, 0x000cbc6u, 0x000cbd5u, 0x000cbe6u, 0x000cc50u, 0x000cc66u, 0x000cc90u,
    0x000cca6u, 0x000cce0u, 0x000cd56u, 0x000cd70u, 0x000cdd5u, 0x000cdf0u, 0x000ce05u, 0x000ce26u,
    0x000ce40u, 0x000ce67u, 0x000cf00u, 0x000cf15u, 0x000cf36u, 0x000cf40u, 0x000d006u, 0x000d045u,
    0x000d0d0u, 0x000d0e5u, 0x000d110u, 0x000d125u, 0x000d3b6u, 0x000d3d5u, 0x000d3e6u, 0x000d450u,
    0x000d466u, 0x000d490u, 0x000d4a6u, 0x000d4e5u, 0x000d4f0u, 0x000d545u, 0x000d576u, 0x000d587u,
    0x000d5f5u, 0x000d626u, 0x000d640u, 0x000d667u, 0x000d790u, 0x000d7a5u, 0x000d800u, 0x000d816u,
    0x000d840u, 0x000d855u, 0x000d970u, 0x000d9a5u, 0x000db20u, 0x000db35u, 0x000dbc0u, 0x000dbd5u,
    0x000dbe0u, 0x000dc05u, 0x000dc70u, 0x000dca6u, 0x000dcb0u, 0x000dcf6u, 0x000dd50u, 0x000dd66u,
    0x000dd70u, 0x000dd86u, 0x000de00u, 0x000de67u, 0x000df00u, 0x000df26u, 0x000df40u, 0x000e015u,
    0x000e316u, 0x000e325u, 0x000e346u, 0x000e3b0u, 0x000e405u, 0x000e464u, 0x000e476u, 0x000e4f0u,
    0x000e507u, 0x000e5a0u, 0x000e815u, 0x000e830u, 0x000e845u, 0x000e850u, 0x000e865u, 0x000e8b0u,
    0x000e8c5u, 0x000ea40u, 0x000ea55u, 0x000ea60u, 0x000ea75u, 0x000eb16u, 0x000eb25u, 0x000eb46u,
    0x000ebd5u, 0x000ebe0u, 0x000ec05u, 0x000ec50u, 0x000ec64u, 0x000ec70u, 0x000ec86u, 0x000ecf0u,
    0x000ed07u, 0x000eda0u, 0x000edc5u, 0x000ee00u, 0x000f005u, 0x000f010u, 0x000f186u, 0x000f1a0u,
    0x000f207u, 0x000f340u, 0x000f356u, 0x000f360u, 0x000f376u, 0x000f380u, 0x000f396u, 0x000f3a0u,
    0x000f3e6u, 0x000f405u, 0x000f480u, 0x000f495u, 0x000f6d0u, 0x000f716u, 0x000f850u, 0x000f866u,
    0x000f885u, 0x000f8d6u, 0x000f980u, 0x000f996u, 0x000fbd0u, 0x000fc66u, 0x000fc70u, 0x0010005u,
    0x00102b6u, 0x00103f5u, 0x0010407u, 0x00104a0u, 0x0010505u, 0x0010566u, 0x00105a5u, 0x00105e6u,
    0x0010615u, 0x0010626u, 0x0010655u, 0x0010676u, 0x00106e5u, 0x0010716u, 0x0010755u, 0x0010826u,
    0x00108e5u, 0x00108f6u, 0x0010907u, 0x00109a6u, 0x00109e0u, 0x0010a01u, 0x0010c60u, 0x0010c71u,
    0x0010c80u, 0x0010cd1u, 0x0010ce0u, 0x0010d02u, 0x0010fb0u, 0x0010fc4u, 0x0010fd2u, 0x0011005u,
    0x0012490u, 0x00124a5u, 0x00124e0u, 0x0012505u, 0x0012570u, 0x0012585u, 0x0012590u, 0x00125a5u,
    0x00125e0u, 0x0012605u, 0x0012890u, 0x00128a5u, 0x00128e0u, 0x0012905u, 0x0012b10u, 0x0012b25u,
    0x0012b60u, 0x0012b85u, 0x0012bf0u, 0x0012c05u, 0x0012c10u, 0x0012c25u, 0x0012c60u, 0x0012c85u,
    0x0012d70u, 0x0012d85u, 0x0013110u, 0x0013125u, 0x0013160u, 0x0013185u, 0x00135b0u, 0x00135d6u,
    0x0013600u, 0x0013697u, 0x00137d0u, 0x0013805u, 0x0013900u, 0x0013a01u, 0x0013f60u, 0x0013f82u,
    0x0013fe0u, 0x0014015u, 0x00166d0u, 0x00166f5u, 0x0016808u, 0x0016815u, 0x00169b0u, 0x0016a05u,
    0x0016eb0u, 0x0016ee7u, 0x0016f15u, 0x0016f90u, 0x0017005u, 0x0017126u, 0x0017160u, 0x00171f5u,
    0x0017326u, 0x0017350u, 0x0017405u, 0x0017526u, 0x0017540u, 0x0017605u, 0x00176d0u, 0x00176e5u,
    0x0017710u, 0x0017726u, 0x0017740u, 0x0017805u, 0x0017b46u, 0x0017d40u, 0x0017d74u, 0x0017d80u,
    0x0017dc5u, 0x0017dd6u, 0x0017de0u, 0x0017e07u, 0x0017ea0u, 0x0017f07u, 0x0017fa0u, 0x00180b6u,
    0x00180e0u, 0x00180f6u, 0x0018107u, 0x00181a0u, 0x0018205u, 0x0018434u, 0x0018445u, 0x0018790u,
    0x0018805u, 0x0018856u, 0x0018875u, 0x0018a96u, 0x0018aa5u, 0x0018ab0u, 0x0018b05u, 0x0018f60u,
    0x0019005u, 0x00191f0u, 0x0019206u, 0x00192c0u, 0x0019306u, 0x00193c0u, 0x0019467u, 0x0019505u,
    0x00196e0u, 0x0019705u, 0x0019750u, 0x0019805u, 0x0019ac0u, 0x0019b05u, 0x0019ca0u, 0x0019d07u,
    0x0019db0u, 0x001a005u, 0x001a176u, 0x001a1c0u, 0x001a205u, 0x001a556u, 0x001a5f0u, 0x001a606u,
    0x001a7d0u, 0x001a7f6u, 0x001a807u, 0x001a8a0u, 0x001a907u, 0x001a9a0u, 0x001aa74u, 0x001aa80u,
    0x001ab06u, 0x001acf0u, 0x001b006u, 0x001b055u, 0x001b346u, 0x001b455u, 0x001b4d0u, 0x001b507u,
    0x001b5a0u, 0x001b6b6u, 0x001b740u, 0x001b806u, 0x001b835u, 0x001ba16u, 0x001bae5u, 0x001bb07u,
    0x001bba5u, 0x001be66u, 0x001bf40u, 0x001c005u, 0x001c246u, 0x001c380u, 0x001c407u, 0x001c4a0u,
    0x001c4d5u, 0x001c507u, 0x001c5a5u, 0x001c784u, 0x001c7e0u, 0x001c802u, 0x001c891u, 0x001c8a2u,
    0x001c8b0u, 0x001c901u, 0x001cbb0u, 0x001cbd1u, 0x001cc00u, 0x001cd06u, 0x001cd30u, 0x001cd46u,
    0x001ce95u, 0x001ced6u, 0x001cee5u, 0x001cf46u, 0x001cf55u, 0x001cf76u, 0x001cfa5u, 0x001cfb0u,
    0x001d002u, 0x001d2c4u, 0x001d6b2u, 0x001d784u, 0x001d792u, 0x001d9b4u, 0x001dc06u, 0x001e001u,
    0x001e012u, 0x001e021u, 0x001e032u, 0x001e041u, 0x001e052u, 0x001e061u, 0x001e072u, 0x001e081u,
    0x001e092u, 0x001e0a1u, 0x001e0b2u, 0x001e0c1u, 0x001e0d2u, 0x001e0e1u, 0x001e0f2u, 0x001e101u,
    0x001e112u, 0x001e121u, 0x001e132u, 0x001e141u, 0x001e152u, 0x001e161u, 0x001e172u, 0x001e181u,
    0x001e192u, 0x001e1a1u, 0x001e1b2u, 0x001e1c1u, 0x001e1d2u, 0x001e1e1u, 0x001e1f2u, 0x001e201u,
    0x001e212u, 0x001e221u, 0x001e232u, 0x001e241u, 0x001e252u, 0x001e261u, 0x001e272u, 0x001e281u,
    0x001e292u, 0x001e2a1u, 0x001e2b2u, 0x001e2c1u, 0x001e2d2u, 0x001e2e1u, 0x001e2f2u, 0x001e301u,
    0x001e312u, 0x001e321u, 0x001e332u, 0x001e341u, 0x001e352u, 0x001e361u, 0x001e372u, 0x001e381u,
    0x001e392u, 0x001e3a1u, 0x001e3b2u, 0x001e3c1u, 0x001e3d2u, 0x001e3e1u, 0x001e3f2u, 0x001e401u,
    0x001e412u, 0x001e421u, 0x001e432u, 0x001e441u, 0x001e452u, 0x001e461u, 0x001e472u, 0x001e481u,
    0x001e492u, 0x001e4a1u, 0x001e4b2u, 0x001e4c1u, 0x001e4d2u, 0x001e4e1u, 0x001e4f2u, 0x001e501u,
    0x001e512u, 0x001e521u, 0x001e532u, 0x001e541u, 0x001e552u, 0x001e561u, 0x001e572u, 0x001e581u,
    0x001e592u, 0x001e5a1u, 0x001e5b2u, 0x001e5c1u, 0x001e5d2u, 0x001e5e1u, 0x001e5f2u, 0x001e601u,
    0x001e612u, 0x001e621u, 0x001e632u, 0x001e641u, 0x001e652u, 0x001e661u, 0x001e672u, 0x001e681u,
    0x001e692u, 0x001e6a1u, 0x001e6b2u, 0x001e6c1u, 0x001e6d2u, 0x001e6e1u, 0x001e6f2u, 0x001e701u,
    0x001e712u, 0x001e721u, 0x001e732u, 0x001e741u, 0x001e752u, 0x001e761u, 0x001e772u, 0x001e781u,
    0x001e792u, 0x001e7a1u, 0x001e7b2u, 0x001e7c1u, 0x001e7d2u, 0x001e7e1u, 0x001e7f2u, 0x001e801u,
    0x001e812u, 0x001e821u, 0x001e832u, 0x001e841u, 0x001e852u, 0x001e861u, 0x001e872u, 0x001e881u,
    0x001e892u, 0x001e8a1u, 0x001e8b2u, 0x001e8c1u, 0x001e8d2u, 0x001e8e1u, 0x001e8f2u, 0x001e901u,
    0x001e912u, 0x001e921u, 0x001e932u, 0x001e941u, 0x001e952u, 0x001e9e1u, 0x001e9f2u, 0x001ea01u,
    0x001ea12u, 0x001ea21u, 0x001ea32u, 0x001ea41u, 0x001ea52u, 0x001ea61u, 0x001ea72u, 0x001ea81u,
    0x001ea92u, 0x001eaa1u, 0x001eab2u, 0x001eac1u, 0x001ead2u, 0x001eae1u, 0x001eaf2u, 0x001eb01u,
    0x001eb12u, 0x001eb21u, 0x001eb32u, 0x001eb41u, 0x001eb52u, 0x001eb61u, 0x001eb72u, 0x001eb81u,
    0x001eb92u, 0x001eba1u, 0x001ebb2u, 0x001ebc1u, 0x001ebd2u, 0x001ebe1u, 0x001ebf2u, 0x001ec01u,
    0x001ec12u, 0x001ec21u, 0x001ec32u, 0x001ec41u, 0x001ec52u, 0x001ec61u, 0x001ec72u, 0x001ec81u,
    0x001ec92u, 0x001eca1u, 0x001ecb2u, 0x001ecc1u, 0x001ecd2u, 0x001ece1u, 0x001ecf2u, 0x001ed01u,
    0x001ed12u, 0x001ed21u, 0x001ed32u, 0x001ed41u, 0x001ed52u, 0x001ed61u, 0x001ed72u, 0x001ed81u,
    0x001ed92u, 0x001eda1u, 0x001edb2u, 0x001edc1u, 0x001edd2u, 0x001ede1u, 0x001edf2u, 0x001ee01u,
    0x001ee12u, 0x001ee21u, 0x001ee32u, 0x001ee41u, 0x001ee52u, 0x001ee61u, 0x001ee72u, 0x001ee81u,
    0x001ee92u, 0x001eea1u, 0x001eeb2u, 0x001eec1u, 0x001eed2u, 0x001eee1u, 0x001eef2u, 0x001ef01u,
    0x001ef12u, 0x001ef21u, 0x001ef32u, 0x001ef41u, 0x001ef52u, 0x001ef61u, 0x001ef72u, 0x001ef81u,
    0x001ef92u, 0x001efa1u, 0x001efb2u, 0x001efc1u, 0x001efd2u, 0x001efe1u, 0x001eff2u, 0x001f081u,
    0x001f102u, 0x001f160u, 0x001f181u, 0x001f1e0u, 0x001f202u, 0x001f281u, 0x001f302u, 0x001f381u,
    0x001f402u, 0x001f460u, 0x001f481u, 0x001f4e0u, 0x001f502u, 0x001f580u, 0x001f591u, 0x001f5a0u,
    0x001f5b1u, 0x001f5c0u, 0x001f5d1u, 0x001f5e0u, 0x001f5f1u, 0x001f602u, 0x001f681u, 0x001f702u,
    0x001f7e0u, 0x001f802u, 0x001f883u, 0x001f902u, 0x001f983u, 0x001fa02u, 0x001fa83u, 0x001fb02u,
    0x001fb50u, 0x001fb62u, 0x001fb81u, 0x001fbc3u, 0x001fbd0u, 0x001fbe2u, 0x001fbf0u, 0x001fc22u,
    0x001fc50u, 0x001fc62u, 0x001fc81u, 0x001fcc3u, 0x001fcd0u, 0x001fd02u, 0x001fd40u, 0x001fd62u,
    0x001fd81u, 0x001fdc0u, 0x001fe02u, 0x001fe81u, 0x001fed0u, 0x001ff22u, 0x001ff50u, 0x001ff62u,
    0x001ff81u, 0x001ffc3u, 0x001ffd0u, 0x0020008u, 0x00200b0u, 0x0020288u, 0x00202a0u, 0x00202f8u,
    0x0020300u, 0x00205f8u, 0x0020600u, 0x0020707u, 0x0020714u, 0x0020720u, 0x0020747u, 0x00207a0u,
    0x00207f4u, 0x0020807u, 0x00208a0u, 0x0020904u, 0x00209d0u, 0x0020d06u, 0x0020f10u, 0x0021021u,
    0x0021030u, 0x0021071u, 0x0021080u, 0x00210a2u, 0x00210b1u, 0x00210e2u, 0x0021101u, 0x0021132u,
    0x0021140u, 0x0021151u, 0x0021160u, 0x0021191u, 0x00211e0u, 0x0021241u, 0x0021250u, 0x0021261u,
    0x0021270u, 0x0021281u, 0x0021290u, 0x00212a1u, 0x00212e0u, 0x00212f2u, 0x0021301u, 0x0021342u,
    0x0021355u, 0x0021392u, 0x00213a0u, 0x00213c2u, 0x00213e1u, 0x0021400u, 0x0021451u, 0x0021462u,
    0x00214a0u, 0x00214e2u, 0x00214f0u, 0x0021507u, 0x0021831u, 0x0021842u, 0x0021857u, 0x00218a0u,
    0x0024607u, 0x00249c0u, 0x0024ea7u, 0x0025000u, 0x0027767u, 0x0027940u, 0x002c001u, 0x002c302u,
    0x002c601u, 0x002c612u, 0x002c621u, 0x002c652u, 0x002c671u, 0x002c682u, 0x002c691u, 0x002c6a2u,
    0x002c6b1u, 0x002c6c2u, 0x002c6d1u, 0x002c712u, 0x002c721u, 0x002c732u, 0x002c751u, 0x002c762u,
    0x002c7c4u, 0x002c7e1u, 0x002c812u, 0x002c821u, 0x002c832u, 0x002c841u, 0x002c852u, 0x002c861u,
    0x002c872u, 0x002c881u, 0x002c892u, 0x002c8a1u, 0x002c8b2u, 0x002c8c1u, 0x002c8d2u, 0x002c8e1u,
    0x002c8f2u, 0x002c901u, 0x002c912u, 0x002c921u, 0x002c932u, 0x002c941u, 0x002c952u, 0x002c961u,
    0x002c972u, 0x002c981u, 0x002c992u, 0x002c9a1u, 0x002c9b2u, 0x002c9c1u, 0x002c9d2u, 0x002c9e1u,
    0x002c9f2u, 0x002ca01u, 0x002ca12u, 0x002ca21u, 0x002ca32u, 0x002ca41u, 0x002ca52u, 0x002ca61u,
    0x002ca72u, 0x002ca81u, 0x002ca92u, 0x002caa1u, 0x002cab2u, 0x002cac1u, 0x002cad2u, 0x002cae1u,
    0x002caf2u, 0x002cb01u, 0x002cb12u, 0x002cb21u, 0x002cb32u, 0x002cb41u, 0x002cb52u, 0x002cb61u,
    0x002cb72u, 0x002cb81u, 0x002cb92u, 0x002cba1u, 0x002cbb2u, 0x002cbc1u, 0x002cbd2u, 0x002cbe1u,
    0x002cbf2u, 0x002cc01u, 0x002cc12u, 0x002cc21u, 0x002cc32u, 0x002cc41u, 0x002cc52u, 0x002cc61u,
    0x002cc72u, 0x002cc81u, 0x002cc92u, 0x002cca1u, 0x002ccb2u, 0x002ccc1u, 0x002ccd2u, 0x002cce1u,
    0x002ccf2u, 0x002cd01u, 0x002cd12u, 0x002cd21u, 0x002cd32u, 0x002cd41u, 0x002cd52u, 0x002cd61u,
    0x002cd72u, 0x002cd81u, 0x002cd92u, 0x002cda1u, 0x002cdb2u, 0x002cdc1u, 0x002cdd2u, 0x002cde1u,
    0x002cdf2u, 0x002ce01u, 0x002ce12u, 0x002ce21u, 0x002ce32u, 0x002ce50u, 0x002ceb1u, 0x002cec2u,
    0x002ced1u, 0x002cee2u, 0x002cef6u, 0x002cf21u, 0x002cf32u, 0x002cf40u, 0x002cfd7u, 0x002cfe0u,
    0x002d002u, 0x002d260u, 0x002d272u, 0x002d280u, 0x002d2d2u, 0x002d2e0u, 0x002d305u, 0x002d680u,
    0x002d6f4u, 0x002d700u, 0x002d7f6u, 0x002d805u, 0x002d970u, 0x002da05u, 0x002da70u, 0x002da85u,
    0x002daf0u, 0x002db05u, 0x002db70u, 0x002db85u, 0x002dbf0u, 0x002dc05u, 0x002dc70u, 0x002dc85u,
    0x002dcf0u, 0x002dd05u, 0x002dd70u, 0x002dd85u, 0x002ddf0u, 0x002de06u, 0x002e000u, 0x002e2f4u,
    0x002e300u, 0x0030008u, 0x0030010u, 0x0030054u, 0x0030065u, 0x0030077u, 0x0030080u, 0x0030217u,
    0x00302a6u, 0x0030300u, 0x0030314u, 0x0030360u, 0x0030387u, 0x00303b4u, 0x00303c5u, 0x00303d0u,
    0x0030415u, 0x0030970u, 0x0030996u, 0x00309b0u, 0x00309d4u, 0x00309f5u, 0x0030a00u, 0x0030a15u,
    0x0030fb0u, 0x0030fc4u, 0x0030ff5u, 0x0031000u, 0x0031055u, 0x0031300u, 0x0031315u, 0x00318f0u,
    0x0031927u, 0x0031960u, 0x0031a05u, 0x0031c00u, 0x0031f05u, 0x0032000u, 0x0032207u, 0x00322a0u,
    0x0032487u, 0x0032500u, 0x0032517u, 0x0032600u, 0x0032807u, 0x00328a0u, 0x0032b17u, 0x0032c00u,
    0x0034005u, 0x004dc00u, 0x004e005u, 0x00a0154u, 0x00a0165u, 0x00a48d0u, 0x00a4d05u, 0x00a4f84u,
    0x00a4fe0u, 0x00a5005u, 0x00a60c4u, 0x00a60d0u, 0x00a6105u, 0x00a6207u, 0x00a62a5u, 0x00a62c0u,
    0x00a6401u, 0x00a6412u, 0x00a6421u, 0x00a6432u, 0x00a6441u, 0x00a6452u, 0x00a6461u, 0x00a6472u,
    0x00a6481u, 0x00a6492u, 0x00a64a1u, 0x00a64b2u, 0x00a64c1u, 0x00a64d2u, 0x00a64e1u, 0x00a64f2u,
    0x00a6501u, 0x00a6512u, 0x00a6521u, 0x00a6532u, 0x00a6541u, 0x00a6552u, 0x00a6561u, 0x00a6572u,
    0x00a6581u, 0x00a6592u, 0x00a65a1u, 0x00a65b2u, 0x00a65c1u, 0x00a65d2u, 0x00a65e1u, 0x00a65f2u,
    0x00a6601u, 0x00a6612u, 0x00a6621u, 0x00a6632u, 0x00a6641u, 0x00a6652u, 0x00a6661u, 0x00a6672u,
    0x00a6681u, 0x00a6692u, 0x00a66a1u, 0x00a66b2u, 0x00a66c1u, 0x00a66d2u, 0x00a66e5u, 0x00a66f6u,
    0x00a6730u, 0x00a6746u, 0x00a67e0u, 0x00a67f4u, 0x00a6801u, 0x00a6812u, 0x00a6821u, 0x00a6832u,
    0x00a6841u, 0x00a6852u, 0x00a6861u, 0x00a6872u, 0x00a6881u, 0x00a6892u, 0x00a68a1u, 0x00a68b2u,
    0x00a68c1u, 0x00a68d2u, 0x00a68e1u, 0x00a68f2u, 0x00a6901u, 0x00a6912u, 0x00a6921u, 0x00a6932u,
    0x00a6941u, 0x00a6952u, 0x00a6961u, 0x00a6972u, 0x00a6981u, 0x00a6992u, 0x00a69a1u, 0x00a69b2u,
    0x00a69c4u, 0x00a69e6u, 0x00a6a05u, 0x00a6e67u, 0x00a6f06u, 0x00a6f20u, 0x00a7174u, 0x00a7200u,
    0x00a7221u, 0x00a7232u, 0x00a7241u, 0x00a7252u, 0x00a7261u, 0x00a7272u, 0x00a7281u, 0x00a7292u,
    0x00a72a1u, 0x00a72b2u, 0x00a72c1u, 0x00a72d2u, 0x00a72e1u, 0x00a72f2u, 0x00a7321u, 0x00a7332u,
    0x00a7341u, 0x00a7352u, 0x00a7361u, 0x00a7372u, 0x00a7381u, 0x00a7392u, 0x00a73a1u, 0x00a73b2u,
    0x00a73c1u, 0x00a73d2u, 0x00a73e1u, 0x00a73f2u, 0x00a7401u, 0x00a7412u, 0x00a7421u, 0x00a7432u,
    0x00a7441u, 0x00a7452u, 0x00a7461u, 0x00a7472u, 0x00a7481u, 0x00a7492u, 0x00a74a1u, 0x00a74b2u,
    0x00a74c1u, 0x00a74d2u, 0x00a74e1u, 0x00a74f2u, 0x00a7501u, 0x00a7512u, 0x00a7521u, 0x00a7532u,
    0x00a7541u, 0x00a7552u, 0x00a7561u, 0x00a7572u, 0x00a7581u, 0x00a7592u, 0x00a75a1u, 0x00a75b2u,
    0x00a75c1u, 0x00a75d2u, 0x00a75e1u, 0x00a75f2u, 0x00a7601u, 0x00a7612u, 0x00a7621u, 0x00a7632u,
    0x00a7641u, 0x00a7652u, 0x00a7661u, 0x00a7672u, 0x00a7681u, 0x00a7692u, 0x00a76a1u, 0x00a76b2u,
    0x00a76c1u, 0x00a76d2u, 0x00a76e1u, 0x00a76f2u, 0x00a7704u, 0x00a7712u, 0x00a7791u, 0x00a77a2u,
    0x00a77b1u, 0x00a77c2u, 0x00a77d1u, 0x00a77f2u, 0x00a7801u, 0x00a7812u, 0x00a7821u, 0x00a7832u,
    0x00a7841u, 0x00a7852u, 0x00a7861u, 0x00a7872u, 0x00a7884u, 0x00a7890u, 0x00a78b1u, 0x00a78c2u,
    0x00a78d1u, 0x00a78e2u, 0x00a78f5u, 0x00a7901u, 0x00a7912u, 0x00a7921u, 0x00a7932u, 0x00a7961u,
    0x00a7972u, 0x00a7981u, 0x00a7992u, 0x00a79a1u, 0x00a79b2u, 0x00a79c1u, 0x00a79d2u, 0x00a79e1u,
    0x00a79f2u, 0x00a7a01u, 0x00a7a12u, 0x00a7a21u, 0x00a7a32u, 0x00a7a41u, 0x00a7a52u, 0x00a7a61u,
    0x00a7a72u, 0x00a7a81u, 0x00a7a92u, 0x00a7aa1u, 0x00a7af2u, 0x00a7b01u, 0x00a7b52u, 0x00a7b61u,
    0x00a7b72u, 0x00a7b81u, 0x00a7b92u, 0x00a7ba1u, 0x00a7bb2u, 0x00a7bc1u, 0x00a7bd2u, 0x00a7be1u,
    0x00a7bf2u, 0x00a7c01u, 0x00a7c12u, 0x00a7c21u, 0x00a7c32u, 0x00a7c41u, 0x00a7c82u, 0x00a7c91u,
    0x00a7ca2u, 0x00a7cb1u, 0x00a7cd2u, 0x00a7ce0u, 0x00a7d01u, 0x00a7d12u, 0x00a7d20u, 0x00a7d32u,
    0x00a7d40u, 0x00a7d52u, 0x00a7d61u, 0x00a7d72u, 0x00a7d81u, 0x00a7d92u, 0x00a7da1u, 0x00a7db2u,
    0x00a7dc1u, 0x00a7dd0u, 0x00a7f24u, 0x00a7f51u, 0x00a7f62u, 0x00a7f75u, 0x00a7f84u, 0x00a7fa2u,
    0x00a7fb5u, 0x00a8026u, 0x00a8035u, 0x00a8066u, 0x00a8075u, 0x00a80b6u, 0x00a80c5u, 0x00a8236u,
    0x00a8280u, 0x00a82c6u, 0x00a82d0u, 0x00a8307u, 0x00a8360u, 0x00a8405u, 0x00a8740u, 0x00a8806u,
    0x00a8825u, 0x00a8b46u, 0x00a8c60u, 0x00a8d07u, 0x00a8da0u, 0x00a8e06u, 0x00a8f25u, 0x00a8f80u,
    0x00a8fb5u, 0x00a8fc0u, 0x00a8fd5u, 0x00a8ff6u, 0x00a9007u, 0x00a90a5u, 0x00a9266u, 0x00a92e0u,
    0x00a9305u, 0x00a9476u, 0x00a9540u, 0x00a9605u, 0x00a97d0u, 0x00a9806u, 0x00a9845u, 0x00a9b36u,
    0x00a9c10u, 0x00a9cf4u, 0x00a9d07u, 0x00a9da0u, 0x00a9e05u, 0x00a9e56u, 0x00a9e64u, 0x00a9e75u,
    0x00a9f07u, 0x00a9fa5u, 0x00a9ff0u, 0x00aa005u, 0x00aa296u, 0x00aa370u, 0x00aa405u, 0x00aa436u,
    0x00aa445u, 0x00aa4c6u, 0x00aa4e0u, 0x00aa507u, 0x00aa5a0u, 0x00aa605u, 0x00aa704u, 0x00aa715u,
    0x00aa770u, 0x00aa7a5u, 0x00aa7b6u, 0x00aa7e5u, 0x00aab06u, 0x00aab15u, 0x00aab26u, 0x00aab55u,
    0x00aab76u, 0x00aab95u, 0x00aabe6u, 0x00aac05u, 0x00aac16u, 0x00aac25u, 0x00aac30u, 0x00aadb5u,
    0x00aadd4u, 0x00aade0u, 0x00aae05u, 0x00aaeb6u, 0x00aaf00u, 0x00aaf25u, 0x00aaf34u, 0x00aaf56u,
    0x00aaf70u, 0x00ab015u, 0x00ab070u, 0x00ab095u, 0x00ab0f0u, 0x00ab115u, 0x00ab170u, 0x00ab205u,
    0x00ab270u, 0x00ab285u, 0x00ab2f0u, 0x00ab302u, 0x00ab5b0u, 0x00ab5c4u, 0x00ab602u, 0x00ab694u,
    0x00ab6a0u, 0x00ab702u, 0x00abc05u, 0x00abe36u, 0x00abeb0u, 0x00abec6u, 0x00abee0u, 0x00abf07u,
    0x00abfa0u, 0x00ac005u, 0x00d7a40u, 0x00d7b05u, 0x00d7c70u, 0x00d7cb5u, 0x00d7fc0u, 0x00f9005u,
    0x00fa6e0u, 0x00fa705u, 0x00fada0u, 0x00fb002u, 0x00fb070u, 0x00fb132u, 0x00fb180u, 0x00fb1d5u,
    0x00fb1e6u, 0x00fb1f5u, 0x00fb290u, 0x00fb2a5u, 0x00fb370u, 0x00fb385u, 0x00fb3d0u, 0x00fb3e5u,
    0x00fb3f0u, 0x00fb405u, 0x00fb420u, 0x00fb435u, 0x00fb450u, 0x00fb465u, 0x00fbb20u, 0x00fbd35u,
    0x00fd3e0u, 0x00fd505u, 0x00fd900u, 0x00fd925u, 0x00fdc80u, 0x00fdf05u, 0x00fdfc0u, 0x00fe006u,
    0x00fe100u, 0x00fe206u, 0x00fe300u, 0x00fe705u, 0x00fe750u, 0x00fe765u, 0x00fefd0u, 0x00ff107u,
    0x00ff1a0u, 0x00ff211u, 0x00ff3b0u, 0x00ff412u, 0x00ff5b0u, 0x00ff665u, 0x00ff704u, 0x00ff715u,
    0x00ff9e4u, 0x00ffa05u, 0x00ffbf0u, 0x00ffc25u, 0x00ffc80u, 0x00ffca5u, 0x00ffd00u, 0x00ffd25u,
    0x00ffd80u, 0x00ffda5u, 0x00ffdd0u, 0x0100005u, 0x01000c0u, 0x01000d5u, 0x0100270u, 0x0100285u,
    0x01003b0u, 0x01003c5u, 0x01003e0u, 0x01003f5u, 0x01004e0u, 0x0100505u, 0x01005e0u, 0x0100805u,
    0x0100fb0u, 0x0101077u, 0x0101340u, 0x0101407u, 0x0101790u, 0x01018a7u, 0x01018c0u, 0x0101fd6u,
    0x0101fe0u, 0x0102805u, 0x01029d0u, 0x0102a05u, 0x0102d10u, 0x0102e06u, 0x0102e17u, 0x0102fc0u,
    0x0103005u, 0x0103207u, 0x0103240u, 0x01032d5u, 0x0103417u, 0x0103425u, 0x01034a7u, 0x01034b0u,
    0x0103505u, 0x0103766u, 0x01037b0u, 0x0103805u, 0x01039e0u, 0x0103a05u, 0x0103c40u, 0x0103c85u,
    0x0103d00u, 0x0103d17u, 0x0103d60u, 0x0104001u, 0x0104282u, 0x0104505u, 0x01049e0u, 0x0104a07u,
    0x0104aa0u, 0x0104b01u, 0x0104d40u, 0x0104d82u, 0x0104fc0u, 0x0105005u, 0x0105280u, 0x0105305u,
    0x0105640u, 0x0105701u, 0x01057b0u, 0x01057c1u, 0x01058b0u, 0x01058c1u, 0x0105930u, 0x0105941u,
    0x0105960u, 0x0105972u, 0x0105a20u, 0x0105a32u, 0x0105b20u, 0x0105b32u, 0x0105ba0u, 0x0105bb2u,
    0x0105bd0u, 0x0105c05u, 0x0105f40u, 0x0106005u, 0x0107370u, 0x0107405u, 0x0107560u, 0x0107605u,
    0x0107680u, 0x0107804u, 0x0107860u, 0x0107874u, 0x0107b10u, 0x0107b24u, 0x0107bb0u, 0x0108005u,
    0x0108060u, 0x0108085u, 0x0108090u, 0x01080a5u, 0x0108360u, 0x0108375u, 0x0108390u, 0x01083c5u,
    0x01083d0u, 0x01083f5u, 0x0108560u, 0x0108587u, 0x0108605u, 0x0108770u, 0x0108797u, 0x0108805u,
    0x01089f0u, 0x0108a77u, 0x0108b00u, 0x0108e05u, 0x0108f30u, 0x0108f45u, 0x0108f60u, 0x0108fb7u,
    0x0109005u, 0x0109167u, 0x01091c0u, 0x0109205u, 0x01093a0u, 0x0109805u, 0x0109b80u, 0x0109bc7u,
    0x0109be5u, 0x0109c07u, 0x0109d00u, 0x0109d27u, 0x010a005u, 0x010a016u, 0x010a040u, 0x010a056u,
    0x010a070u, 0x010a0c6u, 0x010a105u, 0x010a140u, 0x010a155u, 0x010a180u, 0x010a195u, 0x010a360u,
    0x010a386u, 0x010a3b0u, 0x010a3f6u, 0x010a407u, 0x010a490u, 0x010a605u, 0x010a7d7u, 0x010a7f0u,
    0x010a805u, 0x010a9d7u, 0x010aa00u, 0x010ac05u, 0x010ac80u, 0x010ac95u, 0x010ae56u, 0x010ae70u,
    0x010aeb7u, 0x010af00u, 0x010b005u, 0x010b360u, 0x010b405u, 0x010b560u, 0x010b587u, 0x010b605u,
    0x010b730u, 0x010b787u, 0x010b805u, 0x010b920u, 0x010ba97u, 0x010bb00u, 0x010c005u, 0x010c490u,
    0x010c801u, 0x010cb30u, 0x010cc02u, 0x010cf30u, 0x010cfa7u, 0x010d005u, 0x010d246u, 0x010d280u,
    0x010d307u, 0x010d3a0u, 0x010d407u, 0x010d4a5u, 0x010d4e4u, 0x010d4f5u, 0x010d501u, 0x010d660u,
    0x010d696u, 0x010d6e0u, 0x010d6f4u, 0x010d702u, 0x010d860u, 0x010e607u, 0x010e7f0u, 0x010e805u,
    0x010eaa0u, 0x010eab6u, 0x010ead0u, 0x010eb05u, 0x010eb20u, 0x010ec25u, 0x010ec50u, 0x010efc6u,
    0x010f005u, 0x010f1d7u, 0x010f275u, 0x010f280u, 0x010f305u, 0x010f466u, 0x010f517u, 0x010f550u,
    0x010f705u, 0x010f826u, 0x010f860u, 0x010fb05u, 0x010fc57u, 0x010fcc0u, 0x010fe05u, 0x010ff70u,
    0x0110006u, 0x0110035u, 0x0110386u, 0x0110470u, 0x0110527u, 0x0110706u, 0x0110715u, 0x0110736u,
    0x0110755u, 0x0110760u, 0x01107f6u, 0x0110835u, 0x0110b06u, 0x0110bb0u, 0x0110c26u, 0x0110c30u,
    0x0110d05u, 0x0110e90u, 0x0110f07u, 0x0110fa0u, 0x0111006u, 0x0111035u, 0x0111276u, 0x0111350u,
    0x0111367u, 0x0111400u, 0x0111445u, 0x0111456u, 0x0111475u, 0x0111480u, 0x0111505u, 0x0111736u,
    0x0111740u, 0x0111765u, 0x0111770u, 0x0111806u, 0x0111835u, 0x0111b36u, 0x0111c15u, 0x0111c50u,
    0x0111c96u, 0x0111cd0u, 0x0111ce6u, 0x0111d07u, 0x0111da5u, 0x0111db0u, 0x0111dc5u, 0x0111dd0u,
    0x0111e17u, 0x0111f50u, 0x0112005u, 0x0112120u, 0x0112135u, 0x01122c6u, 0x0112380u, 0x01123e6u,
    0x01123f5u, 0x0112416u, 0x0112420u, 0x0112805u, 0x0112870u, 0x0112885u, 0x0112890u, 0x01128a5u,
    0x01128e0u, 0x01128f5u, 0x01129e0u, 0x01129f5u, 0x0112a90u, 0x0112b05u, 0x0112df6u, 0x0112eb0u,
    0x0112f07u, 0x0112fa0u, 0x0113006u, 0x0113040u, 0x0113055u, 0x01130d0u, 0x01130f5u, 0x0113110u,
    0x0113135u, 0x0113290u, 0x01132a5u, 0x0113310u, 0x0113325u, 0x0113340u, 0x0113355u, 0x01133a0u,
    0x01133b6u, 0x01133d5u, 0x01133e6u, 0x0113450u, 0x0113476u, 0x0113490u, 0x01134b6u, 0x01134e0u,
    0x0113505u, 0x0113510u, 0x0113576u, 0x0113580u, 0x01135d5u, 0x0113626u, 0x0113640u, 0x0113666u,
    0x01136d0u, 0x0113706u, 0x0113750u, 0x0113805u, 0x01138a0u, 0x01138b5u, 0x01138c0u, 0x01138e5u,
    0x01138f0u, 0x0113905u, 0x0113b60u, 0x0113b75u, 0x0113b86u, 0x0113c10u, 0x0113c26u, 0x0113c30u,
    0x0113c56u, 0x0113c60u, 0x0113c76u, 0x0113cb0u, 0x0113cc6u, 0x0113d15u, 0x0113d26u, 0x0113d35u,
    0x0113d40u, 0x0113e16u, 0x0113e30u, 0x0114005u, 0x0114356u, 0x0114475u, 0x01144b0u, 0x0114507u,
    0x01145a0u, 0x01145e6u, 0x01145f5u, 0x0114620u, 0x0114805u, 0x0114b06u, 0x0114c45u, 0x0114c60u,
    0x0114c75u, 0x0114c80u, 0x0114d07u, 0x0114da0u, 0x0115805u, 0x0115af6u, 0x0115b60u, 0x0115b86u,
    0x0115c10u, 0x0115d85u, 0x0115dc6u, 0x0115de0u, 0x0116005u, 0x0116306u, 0x0116410u, 0x0116445u,
    0x0116450u, 0x0116507u, 0x01165a0u, 0x0116805u, 0x0116ab6u, 0x0116b85u, 0x0116b90u, 0x0116c07u,
    0x0116ca0u, 0x0116d07u, 0x0116e40u, 0x0117005u, 0x01171b0u, 0x01171d6u, 0x01172c0u, 0x0117307u,
    0x01173c0u, 0x0117405u, 0x0117470u, 0x0118005u, 0x01182c6u, 0x01183b0u, 0x0118a01u, 0x0118c02u,
    0x0118e07u, 0x0118f30u, 0x0118ff5u, 0x0119070u, 0x0119095u, 0x01190a0u, 0x01190c5u, 0x0119140u,
    0x0119155u, 0x0119170u, 0x0119185u, 0x0119306u, 0x0119360u, 0x0119376u, 0x0119390u, 0x01193b6u,
    0x01193f5u, 0x0119406u, 0x0119415u, 0x0119426u, 0x0119440u, 0x0119507u, 0x01195a0u, 0x0119a05u,
    0x0119a80u, 0x0119aa5u, 0x0119d16u, 0x0119d80u, 0x0119da6u, 0x0119e15u, 0x0119e20u, 0x0119e35u,
    0x0119e46u, 0x0119e50u, 0x011a005u, 0x011a016u, 0x011a0b5u, 0x011a336u, 0x011a3a5u, 0x011a3b6u,
    0x011a3f0u, 0x011a476u, 0x011a480u, 0x011a505u, 0x011a516u, 0x011a5c5u, 0x011a8a6u, 0x011a9a0u,
    0x011a9d5u, 0x011a9e0u, 0x011ab05u, 0x011af90u, 0x011bc05u, 0x011be10u, 0x011bf07u, 0x011bfa0u,
    0x011c005u, 0x011c090u, 0x011c0a5u, 0x011c2f6u, 0x011c370u, 0x011c386u, 0x011c405u, 0x011c410u,
    0x011c507u, 0x011c6d0u, 0x011c725u, 0x011c900u, 0x011c926u, 0x011ca80u, 0x011ca96u, 0x011cb70u,
    0x011d005u, 0x011d070u, 0x011d085u, 0x011d0a0u, 0x011d0b5u, 0x011d316u, 0x011d370u, 0x011d3a6u,
    0x011d3b0u, 0x011d3c6u, 0x011d3e0u, 0x011d3f6u, 0x011d465u, 0x011d476u, 0x011d480u, 0x011d507u,
    0x011d5a0u, 0x011d605u, 0x011d660u, 0x011d675u, 0x011d690u, 0x011d6a5u, 0x011d8a6u, 0x011d8f0u,
    0x011d906u, 0x011d920u, 0x011d936u, 0x011d985u, 0x011d990u, 0x011da07u, 0x011daa0u, 0x011ee05u,
    0x011ef36u, 0x011ef70u, 0x011f006u, 0x011f025u, 0x011f036u, 0x011f045u, 0x011f110u, 0x011f125u,
    0x011f346u, 0x011f3b0u, 0x011f3e6u, 0x011f430u, 0x011f507u, 0x011f5a6u, 0x011f5b0u, 0x011fb05u,
    0x011fb10u, 0x011fc07u, 0x011fd50u, 0x0120005u, 0x01239a0u, 0x0124007u, 0x01246f0u, 0x0124805u,
    0x0125440u, 0x012f905u, 0x012ff10u, 0x0130005u, 0x0134300u, 0x0134406u, 0x0134415u, 0x0134476u,
    0x0134560u, 0x0134605u, 0x0143fb0u, 0x0144005u, 0x0146470u, 0x0161005u, 0x01611e6u, 0x0161307u,
    0x01613a0u, 0x0168005u, 0x016a390u, 0x016a405u, 0x016a5f0u, 0x016a607u, 0x016a6a0u, 0x016a705u,
    0x016abf0u, 0x016ac07u, 0x016aca0u, 0x016ad05u, 0x016aee0u, 0x016af06u, 0x016af50u, 0x016b005u,
    0x016b306u, 0x016b370u, 0x016b404u, 0x016b440u, 0x016b507u, 0x016b5a0u, 0x016b5b7u, 0x016b620u,
    0x016b635u, 0x016b780u, 0x016b7d5u, 0x016b900u, 0x016d404u, 0x016d435u, 0x016d6b4u, 0x016d6d0u,
    0x016d707u, 0x016d7a0u, 0x016e401u, 0x016e602u, 0x016e807u, 0x016e970u, 0x016f005u, 0x016f4b0u,
    0x016f4f6u, 0x016f505u, 0x016f516u, 0x016f880u, 0x016f8f6u, 0x016f934u, 0x016fa00u, 0x016fe04u,
    0x016fe20u, 0x016fe34u, 0x016fe46u, 0x016fe50u, 0x016ff06u, 0x016ff20u, 0x0170005u, 0x0187f80u,
    0x0188005u, 0x018cd60u, 0x018cff5u, 0x018d090u, 0x01aff04u, 0x01aff40u, 0x01aff54u, 0x01affc0u,
    0x01affd4u, 0x01afff0u, 0x01b0005u, 0x01b1230u, 0x01b1325u, 0x01b1330u, 0x01b1505u, 0x01b1530u,
    0x01b1555u, 0x01b1560u, 0x01b1645u, 0x01b1680u, 0x01b1705u, 0x01b2fc0u, 0x01bc005u, 0x01bc6b0u,
    0x01bc705u, 0x01bc7d0u, 0x01bc805u, 0x01bc890u, 0x01bc905u, 0x01bc9a0u, 0x01bc9d6u, 0x01bc9f0u,
    0x01ccf07u, 0x01ccfa0u, 0x01cf006u, 0x01cf2e0u, 0x01cf306u, 0x01cf470u, 0x01d1656u, 0x01d16a0u,
    0x01d16d6u, 0x01d1730u, 0x01d17b6u, 0x01d1830u, 0x01d1856u, 0x01d18c0u, 0x01d1aa6u, 0x01d1ae0u,
    0x01d2426u, 0x01d2450u, 0x01d2c07u, 0x01d2d40u, 0x01d2e07u, 0x01d2f40u, 0x01d3607u, 0x01d3790u,
    0x01d4001u, 0x01d41a2u, 0x01d4341u, 0x01d44e2u, 0x01d4550u, 0x01d4562u, 0x01d4681u, 0x01d4822u,
    0x01d49c1u, 0x01d49d0u, 0x01d49e1u, 0x01d4a00u, 0x01d4a21u, 0x01d4a30u, 0x01d4a51u, 0x01d4a70u,
    0x01d4a91u, 0x01d4ad0u, 0x01d4ae1u, 0x01d4b62u, 0x01d4ba0u, 0x01d4bb2u, 0x01d4bc0u, 0x01d4bd2u,
    0x01d4c40u, 0x01d4c52u, 0x01d4d01u, 0x01d4ea2u, 0x01d5041u, 0x01d5060u, 0x01d5071u, 0x01d50b0u,
    0x01d50d1u, 0x01d5150u, 0x01d5161u, 0x01d51d0u, 0x01d51e2u, 0x01d5381u, 0x01d53a0u, 0x01d53b1u,
    0x01d53f0u, 0x01d5401u, 0x01d5450u, 0x01d5461u, 0x01d5470u, 0x01d54a1u, 0x01d5510u, 0x01d5522u,
    0x01d56c1u, 0x01d5862u, 0x01d5a01u, 0x01d5ba2u, 0x01d5d41u, 0x01d5ee2u, 0x01d6081u, 0x01d6222u,
    0x01d63c1u, 0x01d6562u, 0x01d6701u, 0x01d68a2u, 0x01d6a60u, 0x01d6a81u, 0x01d6c10u, 0x01d6c22u,
    0x01d6db0u, 0x01d6dc2u, 0x01d6e21u, 0x01d6fb0u, 0x01d6fc2u, 0x01d7150u, 0x01d7162u, 0x01d71c1u,
    0x01d7350u, 0x01d7362u, 0x01d74f0u, 0x01d7502u, 0x01d7561u, 0x01d76f0u, 0x01d7702u, 0x01d7890u,
    0x01d78a2u, 0x01d7901u, 0x01d7a90u, 0x01d7aa2u, 0x01d7c30u, 0x01d7c42u, 0x01d7ca1u, 0x01d7cb2u,
    0x01d7cc0u, 0x01d7ce7u, 0x01d8000u, 0x01da006u, 0x01da370u, 0x01da3b6u, 0x01da6d0u, 0x01da756u,
    0x01da760u, 0x01da846u, 0x01da850u, 0x01da9b6u, 0x01daa00u, 0x01daa16u, 0x01dab00u, 0x01df002u,
    0x01df0a5u, 0x01df0b2u, 0x01df1f0u, 0x01df252u, 0x01df2b0u, 0x01e0006u, 0x01e0070u, 0x01e0086u,
    0x01e0190u, 0x01e01b6u, 0x01e0220u, 0x01e0236u, 0x01e0250u, 0x01e0266u, 0x01e02b0u, 0x01e0304u,
    0x01e06e0u, 0x01e08f6u, 0x01e0900u, 0x01e1005u, 0x01e12d0u, 0x01e1306u, 0x01e1374u, 0x01e13e0u,
    0x01e1407u, 0x01e14a0u, 0x01e14e5u, 0x01e14f0u, 0x01e2905u, 0x01e2ae6u, 0x01e2af0u, 0x01e2c05u,
    0x01e2ec6u, 0x01e2f07u, 0x01e2fa0u, 0x01e4d05u, 0x01e4eb4u, 0x01e4ec6u, 0x01e4f07u, 0x01e4fa0u,
    0x01e5d05u, 0x01e5ee6u, 0x01e5f05u, 0x01e5f17u, 0x01e5fb0u, 0x01e7e05u, 0x01e7e70u, 0x01e7e85u,
    0x01e7ec0u, 0x01e7ed5u, 0x01e7ef0u, 0x01e7f05u, 0x01e7ff0u, 0x01e8005u, 0x01e8c50u, 0x01e8c77u,
    0x01e8d06u, 0x01e8d70u, 0x01e9001u, 0x01e9222u, 0x01e9446u, 0x01e94b4u, 0x01e94c0u, 0x01e9507u,
    0x01e95a0u, 0x01ec717u, 0x01ecac0u, 0x01ecad7u, 0x01ecb00u, 0x01ecb17u, 0x01ecb50u, 0x01ed017u,
    0x01ed2e0u, 0x01ed2f7u, 0x01ed3e0u, 0x01ee005u, 0x01ee040u, 0x01ee055u, 0x01ee200u, 0x01ee215u,
    0x01ee230u, 0x01ee245u, 0x01ee250u, 0x01ee275u, 0x01ee280u, 0x01ee295u, 0x01ee330u, 0x01ee345u,
    0x01ee380u, 0x01ee395u, 0x01ee3a0u, 0x01ee3b5u, 0x01ee3c0u, 0x01ee425u, 0x01ee430u, 0x01ee475u,
    0x01ee480u, 0x01ee495u, 0x01ee4a0u, 0x01ee4b5u, 0x01ee4c0u, 0x01ee4d5u, 0x01ee500u, 0x01ee515u,
    0x01ee530u, 0x01ee545u, 0x01ee550u, 0x01ee575u, 0x01ee580u, 0x01ee595u, 0x01ee5a0u, 0x01ee5b5u,
    0x01ee5c0u, 0x01ee5d5u, 0x01ee5e0u, 0x01ee5f5u, 0x01ee600u, 0x01ee615u, 0x01ee630u, 0x01ee645u,
    0x01ee650u, 0x01ee675u, 0x01ee6b0u, 0x01ee6c5u, 0x01ee730u, 0x01ee745u, 0x01ee780u, 0x01ee795u,
    0x01ee7d0u, 0x01ee7e5u, 0x01ee7f0u, 0x01ee805u, 0x01ee8a0u, 0x01ee8b5u, 0x01ee9c0u, 0x01eea15u,
    0x01eea40u, 0x01eea55u, 0x01eeaa0u, 0x01eeab5u, 0x01eebc0u, 0x01f1007u, 0x01f10d0u, 0x01fbf07u,
    0x01fbfa0u, 0x0200005u, 0x02a6e00u, 0x02a7005u, 0x02b73a0u, 0x02b7405u, 0x02b81e0u, 0x02b8205u,
    0x02cea20u, 0x02ceb05u, 0x02ebe10u, 0x02ebf05u, 0x02ee5e0u, 0x02f8005u, 0x02fa1e0u, 0x0300005u,
    0x03134b0u, 0x0313505u, 0x0323b00u, 0x0e01006u, 0x0e01f00u,
};
#endif /* FTI__UC_TABLES */
/* ---- end src/03_tables.c ---- */
/* ---- begin src/03_tokenizer.c ---- */
/* === tokenizer: implementation === */
/*
 * Data layout. A tokenizer keeps one entry per id (fti__tok_entry: offset and length of the
 * token's bytes in one blob, its merge rank and type) and one open-addressing hash table from
 * bytes to id over the ordinary tokens (the rank table: BPE looks up the concatenation of two
 * adjacent parts in it). Special tokens live in the same entry array and a small list.
 *
 * Encoding a segment: the pre-tokenizer (hand-written matchers of the three split regexes over
 * generated Unicode classes) yields pre-tokens; each is looked up whole (most English words are
 * one token), then in a per-call cache, else merged: for short words tiktoken's scan for the
 * lowest-ranked pair (O(n^2) but tiny n), for long words a binary heap of (rank, position) over a
 * linked list of parts (O(n log n)). Both give the same result: the lowest rank is merged first,
 * the leftmost on ties.
 *
 * Multi-threaded encoding cuts the text at "safe" boundaries: a space between two ASCII letters,
 * or a letter right after a newline. Every pre-tokenizer here ends the token before such a point
 * (a letter run cannot take a space or newline after it; whitespace and punctuation tokens end at
 * a letter) and starts the next token at it, and no special token occurrence may span it
 * (checked), so chunks encode independently and the concatenated ids equal the serial ones.
 */
/* #include "03_tokenizer.h" (amalgamated) */
/* #include "03_tables.c" (amalgamated) */

/* #include <stdlib.h> (already included) */
/* #include <string.h> (already included) */

/* === tokenizer: Unicode classes and UTF-8 === */

#define FTI__TOKM(c) (1u << (c))
#define FTI__TOKM_L (FTI__TOKM(FTI__UC_LU) | FTI__TOKM(FTI__UC_LL) | FTI__TOKM(FTI__UC_LT) | \
                     FTI__TOKM(FTI__UC_LM) | FTI__TOKM(FTI__UC_LO))
/* o200k: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and [\p{Ll}\p{Lm}\p{Lo}\p{M}] */
#define FTI__TOKM_U (FTI__TOKM(FTI__UC_LU) | FTI__TOKM(FTI__UC_LT) | FTI__TOKM(FTI__UC_LM) | \
                     FTI__TOKM(FTI__UC_LO) | FTI__TOKM(FTI__UC_M))
#define FTI__TOKM_W (FTI__TOKM(FTI__UC_LL) | FTI__TOKM(FTI__UC_LM) | FTI__TOKM(FTI__UC_LO) | \
                     FTI__TOKM(FTI__UC_M))
#define FTI__IS_L(c) ((FTI__TOKM(c) & FTI__TOKM_L) != 0)
#define FTI__IS_N(c) ((c) == FTI__UC_N)
#define FTI__IS_WS(c) ((c) == FTI__UC_WS)
/* [^\s\p{L}\p{N}] */
#define FTI__IS_OTHER(c) (!FTI__IS_L(c) && !FTI__IS_N(c) && !FTI__IS_WS(c))

static int fti__uc_class(uint32_t cp) {
    size_t lo = 0, hi = FTI__UC_N_RUNS;
    if (cp < 0x800) return fti__uc_small[cp];
    /* last run whose start <= cp */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((fti__uc_runs[mid] >> 4) <= cp) lo = mid;
        else hi = mid;
    }
    return (int)(fti__uc_runs[lo] & 15u);
}

/* Strictly decodes the UTF-8 character at s[i] (i < n): returns its length and stores its code
 * point, or returns 0 for an invalid or truncated sequence. */
static size_t fti__utf8_char(const unsigned char *s, size_t n, size_t i, uint32_t *cp) {
    unsigned b0 = s[i], b1, b2, b3;
    size_t left = n - i;
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    if (b0 < 0xC2 || b0 > 0xF4 || left < 2) return 0;
    b1 = s[i + 1];
    if (b0 < 0xE0) {
        if ((b1 & 0xC0) != 0x80) return 0;
        *cp = ((uint32_t)(b0 & 0x1F) << 6) | (b1 & 0x3F);
        return 2;
    }
    if (b0 < 0xF0) {
        if (left < 3) return 0;
        b2 = s[i + 2];
        if ((b1 & 0xC0) != 0x80 || (b2 & 0xC0) != 0x80) return 0;
        if (b0 == 0xE0 && b1 < 0xA0) return 0; /* overlong */
        if (b0 == 0xED && b1 > 0x9F) return 0; /* surrogate */
        *cp = ((uint32_t)(b0 & 0x0F) << 12) | ((uint32_t)(b1 & 0x3F) << 6) | (b2 & 0x3F);
        return 3;
    }
    if (left < 4) return 0;
    b2 = s[i + 2];
    b3 = s[i + 3];
    if ((b1 & 0xC0) != 0x80 || (b2 & 0xC0) != 0x80 || (b3 & 0xC0) != 0x80) return 0;
    if (b0 == 0xF0 && b1 < 0x90) return 0; /* overlong */
    if (b0 == 0xF4 && b1 > 0x8F) return 0; /* > U+10FFFF */
    *cp = ((uint32_t)(b0 & 0x07) << 18) | ((uint32_t)(b1 & 0x3F) << 12) |
          ((uint32_t)(b2 & 0x3F) << 6) | (b3 & 0x3F);
    return 4;
}

/* Class and byte length of the character at s[i] (i < n). An invalid byte is one OTHER char. */
static int fti__cls_slow(const unsigned char *s, size_t n, size_t i, size_t *len) {
    uint32_t cp = 0;
    size_t l = fti__utf8_char(s, n, i, &cp);
    if (l == 0) {
        *len = 1;
        return FTI__UC_OTHER;
    }
    *len = l;
    return fti__uc_class(cp);
}

#define FTI__CLS(s, n, i, lenp) \
    ((s)[i] < 0x80 ? (*(lenp) = 1, (int)fti__uc_small[(s)[i]]) : fti__cls_slow(s, n, i, lenp))

/* === tokenizer: pre-tokenizers === */
/*
 * Each matcher returns the end of the token that the split regex matches at i, following the
 * regex's leftmost-first alternation and greedy backtracking exactly. No pattern has a
 * lookbehind, so a match depends only on the text from i on.
 */

/* End of the run of characters whose class is in `mask`, starting at i. */
static size_t fti__run(const unsigned char *s, size_t n, size_t i, unsigned mask) {
    while (i < n) {
        size_t l;
        int c = FTI__CLS(s, n, i, &l);
        if (!(FTI__TOKM(c) & mask)) break;
        i += l;
    }
    return i;
}

#define FTI__TOKM_OTHER (~(FTI__TOKM_L | FTI__TOKM(FTI__UC_N) | FTI__TOKM(FTI__UC_WS)))

/* Contraction 's 't 're 've 'm 'll 'd at s[i] == '\''; length or 0. icase: (?i:...), where
 * Unicode simple case folding also maps U+017F (long s) to s. */
static size_t fti__contraction(const unsigned char *s, size_t n, size_t i, int icase) {
    unsigned c1, c2;
    if (i + 1 >= n) return 0;
    c1 = s[i + 1];
    if (icase && c1 >= 'A' && c1 <= 'Z') c1 += 32;
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
    if (icase && c1 == 0xC5 && i + 2 < n && s[i + 2] == 0xBF) return 3;
    if (i + 2 >= n) return 0;
    c2 = s[i + 2];
    if (icase && c2 >= 'A' && c2 <= 'Z') c2 += 32;
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
    return 0;
}

/* The whitespace alternatives. With nl_rule (cl100k, o200k) first `\s*[\r\n]+`; then
 * `\s+(?!\S)|\s+`. s[i] is whitespace. */
static size_t fti__ws_token(const unsigned char *s, size_t n, size_t i, int nl_rule) {
    size_t j = i, last = i, nl_end = 0;
    while (j < n) {
        size_t l;
        int c = FTI__CLS(s, n, j, &l);
        if (!FTI__IS_WS(c)) break;
        if (s[j] == '\r' || s[j] == '\n') nl_end = j + 1;
        last = j;
        j += l;
    }
    if (nl_rule && nl_end) return nl_end;
    if (j == n) return j;
    /* followed by a non-space: \s+(?!\S) backs off one character, if that leaves any */
    return last > i ? last : j;
}

static size_t fti__pretok_gpt2(const unsigned char *s, size_t n, size_t i) {
    size_t l, l2;
    int c;
    if (s[i] == '\'') {
        size_t k = fti__contraction(s, n, i, 0);
        if (k) return i + k;
    }
    c = FTI__CLS(s, n, i, &l);
    if (s[i] == ' ' && i + 1 < n) {
        int c2 = FTI__CLS(s, n, i + 1, &l2);
        if (FTI__IS_L(c2)) return fti__run(s, n, i + 1, FTI__TOKM_L);
        if (FTI__IS_N(c2)) return fti__run(s, n, i + 1, FTI__TOKM(FTI__UC_N));
        if (FTI__IS_OTHER(c2)) return fti__run(s, n, i + 1, FTI__TOKM_OTHER);
    }
    if (FTI__IS_L(c)) return fti__run(s, n, i, FTI__TOKM_L);
    if (FTI__IS_N(c)) return fti__run(s, n, i, FTI__TOKM(FTI__UC_N));
    if (FTI__IS_OTHER(c)) return fti__run(s, n, i, FTI__TOKM_OTHER);
    return fti__ws_token(s, n, i, 0);
}

/* \p{N}{1,3} */
static size_t fti__digits3(const unsigned char *s, size_t n, size_t i) {
    int k;
    for (k = 0; k < 3 && i < n; k++) {
        size_t l;
        int c = FTI__CLS(s, n, i, &l);
        if (!FTI__IS_N(c)) break;
        i += l;
    }
    return i;
}

/* ` ?[^\s\p{L}\p{N}]+[\r\n]*` (o200k: [\r\n/]*) at i, or 0 if it does not match. */
static size_t fti__punct_token(const unsigned char *s, size_t n, size_t i, int c, int slash) {
    size_t j = i, l;
    if (s[i] == ' ' && i + 1 < n) {
        int c2 = FTI__CLS(s, n, i + 1, &l);
        if (FTI__IS_OTHER(c2)) j = i + 1;
    }
    if (j == i && !FTI__IS_OTHER(c)) return 0;
    j = fti__run(s, n, j, FTI__TOKM_OTHER);
    while (j < n && (s[j] == '\r' || s[j] == '\n' || (slash && s[j] == '/'))) j++;
    return j;
}

static size_t fti__pretok_cl100k(const unsigned char *s, size_t n, size_t i) {
    size_t l, l2, e;
    int c;
    if (s[i] == '\'') {
        size_t k = fti__contraction(s, n, i, 1);
        if (k) return i + k;
    }
    c = FTI__CLS(s, n, i, &l);
    if (FTI__IS_L(c)) return fti__run(s, n, i + l, FTI__TOKM_L);
    /* [^\r\n\p{L}\p{N}]?\p{L}+ with the optional prefix */
    if (!FTI__IS_N(c) && s[i] != '\r' && s[i] != '\n' && i + l < n) {
        int c2 = FTI__CLS(s, n, i + l, &l2);
        if (FTI__IS_L(c2)) return fti__run(s, n, i + l, FTI__TOKM_L);
    }
    if (FTI__IS_N(c)) return fti__digits3(s, n, i);
    e = fti__punct_token(s, n, i, c, 0);
    if (e) return e;
    return fti__ws_token(s, n, i, 1);
}

/* o200k: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+ from j; 0 if no match.
 * Greedy U* then W+; backtracking U* leaves the match ending after the last W in the U run. */
static size_t fti__o200k_uw(const unsigned char *s, size_t n, size_t j) {
    size_t u = j, last_w_end = 0, l;
    while (u < n) {
        int c = FTI__CLS(s, n, u, &l);
        if (!(FTI__TOKM(c) & FTI__TOKM_U)) break;
        if (FTI__TOKM(c) & FTI__TOKM_W) last_w_end = u + l;
        u += l;
    }
    if (u < n) {
        int c = FTI__CLS(s, n, u, &l);
        if (FTI__TOKM(c) & FTI__TOKM_W) return fti__run(s, n, u, FTI__TOKM_W);
    }
    return last_w_end;
}

static size_t fti__pretok_o200k(const unsigned char *s, size_t n, size_t i) {
    size_t l, l2, e;
    int c = FTI__CLS(s, n, i, &l), c2 = -1;
    int prefix_ok = !FTI__IS_L(c) && !FTI__IS_N(c) && s[i] != '\r' && s[i] != '\n';
    if (i + l < n) c2 = FTI__CLS(s, n, i + l, &l2);
    /* alternative 1: prefix? U* W+ contraction? */
    e = 0;
    if (prefix_ok && c2 >= 0) e = fti__o200k_uw(s, n, i + l);
    if (!e) e = fti__o200k_uw(s, n, i);
    /* alternative 2: prefix? U+ W* contraction? */
    if (!e) {
        if (prefix_ok && c2 >= 0 && (FTI__TOKM(c2) & FTI__TOKM_U))
            e = fti__run(s, n, fti__run(s, n, i + l, FTI__TOKM_U), FTI__TOKM_W);
        else if (FTI__TOKM(c) & FTI__TOKM_U)
            e = fti__run(s, n, fti__run(s, n, i, FTI__TOKM_U), FTI__TOKM_W);
    }
    if (e) {
        if (e < n && s[e] == '\'') e += fti__contraction(s, n, e, 1);
        return e;
    }
    if (FTI__IS_N(c)) return fti__digits3(s, n, i);
    e = fti__punct_token(s, n, i, c, 1);
    if (e) return e;
    return fti__ws_token(s, n, i, 1);
}

static size_t fti__pretok_step(fti_pretok kind, const unsigned char *s, size_t n, size_t i) {
    switch (kind) {
    case FTI_PRETOK_CL100K: return fti__pretok_cl100k(s, n, i);
    case FTI_PRETOK_O200K: return fti__pretok_o200k(s, n, i);
    default: return fti__pretok_gpt2(s, n, i);
    }
}

FTIDEF size_t fti_pretok_next(fti_pretok kind, const char *text, size_t len, size_t pos) {
    if (!text || pos >= len) return len;
    return fti__pretok_step(kind, (const unsigned char *)text, len, pos);
}

FTIDEF const char *fti_pretok_name(fti_pretok kind) {
    switch (kind) {
    case FTI_PRETOK_DEFAULT: return "default";
    case FTI_PRETOK_GPT2: return "gpt2";
    case FTI_PRETOK_CL100K: return "cl100k";
    case FTI_PRETOK_O200K: return "o200k";
    }
    return "?";
}

FTIDEF fti_pretok fti_pretok_parse(const char *name) {
    if (!name) return FTI_PRETOK_DEFAULT;
    if (!strcmp(name, "gpt2") || !strcmp(name, "gpt-2") || !strcmp(name, "r50k") ||
        !strcmp(name, "r50k_base") || !strcmp(name, "p50k_base"))
        return FTI_PRETOK_GPT2;
    if (!strcmp(name, "cl100k") || !strcmp(name, "cl100k_base") || !strcmp(name, "llama-bpe") ||
        !strcmp(name, "llama3"))
        return FTI_PRETOK_CL100K;
    if (!strcmp(name, "o200k") || !strcmp(name, "o200k_base") || !strcmp(name, "gpt-4o"))
        return FTI_PRETOK_O200K;
    return FTI_PRETOK_DEFAULT;
}

/* A safe cut before text[p]: either a space between two ASCII letters, or a letter (ASCII, or
 * any \p{L}) right after a '\n'. Every pattern here ends the token holding text[p-1] at p and
 * starts a token at p (see the top comment); matching from p depends only on text[p..]. */
static int fti__safe_cut(const unsigned char *s, size_t n, size_t p) {
    unsigned a, b;
    if (p == 0 || p >= n) return 0;
    if (s[p - 1] == '\n') {
        size_t l;
        int c = FTI__CLS(s, n, p, &l);
        return FTI__IS_L(c);
    }
    if (p + 1 >= n || s[p] != ' ') return 0;
    a = s[p - 1] | 32u;
    b = s[p + 1] | 32u;
    return a >= 'a' && a <= 'z' && b >= 'a' && b <= 'z';
}

/* First safe cut in [from, limit), or 0 if none. */
static size_t fti__find_cut(const unsigned char *s, size_t n, size_t from, size_t limit) {
    size_t p;
    if (limit > n) limit = n;
    if (from == 0) from = 1;
    for (p = from; p < limit; p++)
        if ((s[p] == ' ' || s[p - 1] == '\n') && fti__safe_cut(s, n, p)) return p;
    return 0;
}

/* === tokenizer: the vocabulary === */

#define FTI__NO_RANK 0xFFFFFFFFu
#define FTI__NO_ID 0xFFFFFFFFu

typedef struct fti__tok_entry {
    uint32_t off;  /* bytes in tok->blob */
    uint32_t len;  /* 0 = hole */
    uint32_t rank; /* merge rank of an ordinary token, FTI__NO_RANK if it cannot be merged to */
    uint32_t type; /* fti_token_type: NORMAL or CONTROL (0 for a hole) */
} fti__tok_entry;

/* Hash slot: the token's first 8 bytes (`head`, zero-padded), its length and 16 bits of the hash
 * (`len_tag`), blob offset, id + 1 (0 = empty) and rank: a lookup of a token of up to 8 bytes
 * (most BPE pairs) touches only the slot. */
typedef struct fti__tok_slot {
    uint64_t head;
    uint32_t len_tag; /* len | (hash >> 48) << 16 */
    uint32_t off;
    uint32_t id1;
    uint32_t rank;
} fti__tok_slot;

struct fti_tokenizer {
    fti_pretok pretok;
    size_t n_vocab;          /* ids 0 .. n_vocab-1 */
    fti__tok_entry *entries; /* (n_vocab) */
    size_t entries_cap;
    unsigned char *blob;     /* token bytes */
    size_t blob_len, blob_cap;
    fti__tok_slot *slots;    /* ordinary tokens by bytes; power-of-two size */
    size_t slot_mask;
    uint32_t byte_id[256];   /* id of each single-byte token */
    uint32_t *special;       /* ids of special tokens, in id order */
    size_t n_special;
    unsigned char special_first[32]; /* bitset of the first bytes of special tokens */
    unsigned char sha[32];   /* SHA-256 of the canonical serialization */
};

/* Hash of a byte string (also picks the cache slot). Reads 8 bytes at a time. */
static uint64_t fti__tok_hash(const unsigned char *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)n * 0xC2B2AE3D27D4EB4Full);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t v = 0;
        size_t k;
        for (k = 0; k < n; k++) v |= (uint64_t)p[k] << (8 * k);
        h = (h ^ v) * 0xFF51AFD7ED558CCDull;
    }
    h ^= h >> 29;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 32;
    return h;
}

/* The first min(n, 8) bytes of p as a number (zero-padded). */
static uint64_t fti__tok_head(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    size_t k;
    if (n >= 8) {
        memcpy(&v, p, 8);
        return v;
    }
    for (k = 0; k < n; k++) v |= (uint64_t)p[k] << (8 * k);
    return v;
}

/* Slot of bytes p[0..n) in the rank table, or NULL. */
static const fti__tok_slot *fti__tok_lookup_h(const fti_tokenizer *tok, const unsigned char *p,
                                              size_t n, uint64_t h) {
    size_t i = (size_t)h & tok->slot_mask;
    uint32_t len_tag = (uint32_t)n | (uint32_t)(h >> 48) << 16;
    uint64_t head;
    if (n > 0xFFFF) return NULL;
    head = fti__tok_head(p, n);
    for (;;) {
        const fti__tok_slot *s = &tok->slots[i];
        if (!s->id1) return NULL;
        if (s->len_tag == len_tag && s->head == head &&
            (n <= 8 || memcmp(tok->blob + s->off + 8, p + 8, n - 8) == 0))
            return s;
        i = (i + 1) & tok->slot_mask;
    }
}

static const fti__tok_slot *fti__tok_lookup(const fti_tokenizer *tok, const unsigned char *p,
                                            size_t n) {
    return fti__tok_lookup_h(tok, p, n, fti__tok_hash(p, n));
}

static void fti__tok_free_parts(fti_tokenizer *tok) {
    fti_free(tok->entries);
    fti_free(tok->blob);
    fti_free(tok->slots);
    fti_free(tok->special);
}

FTIDEF void fti_tokenizer_free(fti_tokenizer *tok) {
    if (!tok) return;
    fti__tok_free_parts(tok);
    fti_free(tok);
}

/* A vocabulary under construction: entries by id, grown as ids arrive. */
static fti_tokenizer *fti__tok_new(void) {
    fti_tokenizer *tok = (fti_tokenizer *)fti_calloc(1, sizeof(fti_tokenizer));
    return tok;
}

/* Ensures ids < n exist (holes); capacity grows geometrically. */
static fti_result fti__tok_grow(fti_tokenizer *tok, size_t n) {
    if (n <= tok->n_vocab) return FTI_OK;
    if (n > FTI_TOK_MAX_VOCAB) return FTI_ERR_LIMIT;
    if (n > tok->entries_cap) {
        size_t cap = tok->entries_cap ? tok->entries_cap : 512;
        fti__tok_entry *e;
        while (cap < n) cap *= 2;
        e = (fti__tok_entry *)fti_realloc(tok->entries, cap * sizeof(fti__tok_entry));
        if (!e) return FTI_ERR_NOMEM;
        tok->entries = e;
        tok->entries_cap = cap;
    }
    memset(tok->entries + tok->n_vocab, 0, (n - tok->n_vocab) * sizeof(fti__tok_entry));
    tok->n_vocab = n;
    return FTI_OK;
}

/* Sets token `id` (must be a hole). Checks nothing else; fti__tok_finish validates. */
static fti_result fti__tok_set(fti_tokenizer *tok, uint32_t id, const void *bytes, size_t len,
                               uint32_t rank, uint32_t type) {
    fti_result r;
    if (len == 0 || len > FTI_TOK_MAX_TOKEN_BYTES) return FTI_ERR_LIMIT;
    if ((size_t)id >= FTI_TOK_MAX_VOCAB) return FTI_ERR_LIMIT;
    r = fti__tok_grow(tok, (size_t)id + 1);
    if (r != FTI_OK) return r;
    if (tok->entries[id].len) return FTI_ERR_EXISTS;
    if (tok->blob_len + len > tok->blob_cap) {
        size_t cap = tok->blob_cap ? tok->blob_cap * 2 : 4096;
        unsigned char *b;
        while (cap < tok->blob_len + len) cap *= 2;
        if (cap > 0xFFFFFFFFu) return FTI_ERR_LIMIT;
        b = (unsigned char *)fti_realloc(tok->blob, cap);
        if (!b) return FTI_ERR_NOMEM;
        tok->blob = b;
        tok->blob_cap = cap;
    }
    memcpy(tok->blob + tok->blob_len, bytes, len);
    tok->entries[id].off = (uint32_t)tok->blob_len;
    tok->entries[id].len = (uint32_t)len;
    tok->entries[id].rank = rank;
    tok->entries[id].type = type;
    tok->blob_len += len;
    return FTI_OK;
}

/* Canonical serialization (fti format v1), see docs/tokenizer.md:
 *   "FTITOKEN" u32 version=1, u32 pretok, u32 n_vocab, u32 n_tokens,
 *   n_tokens records in id order: u32 id, u8 type, u32 rank, u16 len, bytes;
 *   32-byte SHA-256 of everything before it. */
#define FTI__TOK_MAGIC "FTITOKEN"
#define FTI__TOK_VERSION 1u

static fti_result fti__tok_serialize_body(const fti_tokenizer *tok, fti_buf *out) {
    unsigned char hdr[24], rec[11];
    size_t id, n_tokens = 0;
    for (id = 0; id < tok->n_vocab; id++)
        if (tok->entries[id].len) n_tokens++;
    memcpy(hdr, FTI__TOK_MAGIC, 8);
    fti_store_u32(hdr + 8, FTI__TOK_VERSION);
    fti_store_u32(hdr + 12, (uint32_t)tok->pretok);
    fti_store_u32(hdr + 16, (uint32_t)tok->n_vocab);
    fti_store_u32(hdr + 20, (uint32_t)n_tokens);
    fti_buf_reserve(out, 24 + n_tokens * 11 + tok->blob_len + 32);
    fti_buf_append(out, hdr, 24);
    for (id = 0; id < tok->n_vocab; id++) {
        const fti__tok_entry *e = &tok->entries[id];
        if (!e->len) continue;
        fti_store_u32(rec, (uint32_t)id);
        rec[4] = (unsigned char)e->type;
        fti_store_u32(rec + 5, e->rank);
        fti_store_u16(rec + 9, (uint16_t)e->len);
        fti_buf_append(out, rec, 11);
        fti_buf_append(out, tok->blob + e->off, e->len);
    }
    return out->oom ? FTI_ERR_NOMEM : FTI_OK;
}

static int fti__cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Builds the rank table and special list, checks the vocabulary, computes the id. Errors are
 * reported with `name`. */
static fti_result fti__tok_finish(fti_tokenizer *tok, const char *name, fti_error *err) {
    size_t id, n_ord = 0, cap = 16, i;
    fti_buf body;
    if (!name) name = "tokenizer";
    for (i = 0; i < 256; i++) tok->byte_id[i] = FTI__NO_ID;
    for (id = 0; id < tok->n_vocab; id++)
        if (tok->entries[id].len && tok->entries[id].type == FTI_TOKEN_NORMAL) n_ord++;
    while (cap < 2 * n_ord + 16) cap *= 2;
    fti_free(tok->slots);
    tok->slots = (fti__tok_slot *)fti_calloc(cap, sizeof(fti__tok_slot));
    if (!tok->slots) return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", name);
    tok->slot_mask = cap - 1;
    fti_free(tok->special);
    tok->special = NULL;
    tok->n_special = 0;
    memset(tok->special_first, 0, sizeof tok->special_first);
    for (id = 0; id < tok->n_vocab; id++) {
        fti__tok_entry *e = &tok->entries[id];
        const unsigned char *p = tok->blob + e->off;
        if (!e->len) continue;
        if (e->type == FTI_TOKEN_NORMAL) {
            uint64_t h = fti__tok_hash(p, e->len);
            size_t k = (size_t)h & tok->slot_mask;
            if (fti__tok_lookup_h(tok, p, e->len, h))
                return fti_error_set(err, FTI_ERR_FORMAT,
                                     "%s: token %u repeats the bytes of token %u", name,
                                     (unsigned)id,
                                     (unsigned)(fti__tok_lookup_h(tok, p, e->len, h)->id1 - 1));
            while (tok->slots[k].id1) k = (k + 1) & tok->slot_mask;
            tok->slots[k].head = fti__tok_head(p, e->len);
            tok->slots[k].len_tag = e->len | (uint32_t)(h >> 48) << 16;
            tok->slots[k].off = e->off;
            tok->slots[k].id1 = (uint32_t)id + 1;
            tok->slots[k].rank = e->len == 1 ? FTI__NO_RANK : e->rank;
            if (e->len == 1) tok->byte_id[p[0]] = (uint32_t)id;
        } else if (e->type == FTI_TOKEN_CONTROL) {
            tok->n_special++;
        } else {
            return fti_error_set(err, FTI_ERR_FORMAT, "%s: token %u has unknown type %u", name,
                                 (unsigned)id, (unsigned)e->type);
        }
    }
    for (i = 0; i < 256; i++)
        if (tok->byte_id[i] == FTI__NO_ID)
            return fti_error_set(err, FTI_ERR_FORMAT,
                                 "%s: no token for byte 0x%02x (a byte-level BPE needs all 256)",
                                 name, (unsigned)i);
    /* ranks of mergeable tokens must be unique */
    {
        uint32_t *ranks = (uint32_t *)fti_malloc((n_ord + 1) * sizeof(uint32_t));
        size_t nr = 0;
        if (!ranks) return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", name);
        for (id = 0; id < tok->n_vocab; id++) {
            const fti__tok_entry *e = &tok->entries[id];
            if (e->len > 1 && e->type == FTI_TOKEN_NORMAL && e->rank != FTI__NO_RANK)
                ranks[nr++] = e->rank;
        }
        {
            size_t a;
            if (nr > 1) qsort(ranks, nr, sizeof(uint32_t), fti__cmp_u32);
            for (a = 1; a < nr; a++)
                if (ranks[a] == ranks[a - 1]) {
                    uint32_t dup = ranks[a];
                    fti_free(ranks);
                    return fti_error_set(err, FTI_ERR_FORMAT, "%s: rank %u is used twice", name,
                                         (unsigned)dup);
                }
        }
        fti_free(ranks);
    }
    if (tok->n_special) {
        size_t k = 0;
        tok->special = (uint32_t *)fti_malloc(tok->n_special * sizeof(uint32_t));
        if (!tok->special) return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", name);
        for (id = 0; id < tok->n_vocab; id++) {
            const fti__tok_entry *e = &tok->entries[id];
            if (!e->len || e->type != FTI_TOKEN_CONTROL) continue;
            for (i = 0; i < k; i++) {
                const fti__tok_entry *o = &tok->entries[tok->special[i]];
                if (o->len == e->len && !memcmp(tok->blob + o->off, tok->blob + e->off, e->len))
                    return fti_error_set(err, FTI_ERR_FORMAT,
                                         "%s: special tokens %u and %u are the same string", name,
                                         (unsigned)tok->special[i], (unsigned)id);
            }
            tok->special[k++] = (uint32_t)id;
            tok->special_first[tok->blob[e->off] >> 3] |=
                (unsigned char)(1u << (tok->blob[e->off] & 7));
        }
    }
    if (tok->pretok < FTI_PRETOK_GPT2 || tok->pretok > FTI_PRETOK_O200K)
        tok->pretok = FTI_PRETOK_GPT2;
    memset(&body, 0, sizeof body);
    if (fti__tok_serialize_body(tok, &body) != FTI_OK) {
        fti_buf_free(&body);
        return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", name);
    }
    fti_sha256_buf(body.data, body.len, tok->sha);
    fti_buf_free(&body);
    return FTI_OK;
}

/* === tokenizer: queries === */

FTIDEF size_t fti_tokenizer_vocab_size(const fti_tokenizer *tok) { return tok ? tok->n_vocab : 0; }
FTIDEF fti_pretok fti_tokenizer_pretok(const fti_tokenizer *tok) {
    return tok ? tok->pretok : FTI_PRETOK_DEFAULT;
}

FTIDEF const char *fti_tokenizer_token(const fti_tokenizer *tok, uint32_t id, size_t *len) {
    if (len) *len = 0;
    if (!tok || (size_t)id >= tok->n_vocab || !tok->entries[id].len) return NULL;
    if (len) *len = tok->entries[id].len;
    return (const char *)tok->blob + tok->entries[id].off;
}

FTIDEF fti_token_type fti_tokenizer_token_type(const fti_tokenizer *tok, uint32_t id) {
    if (!tok || (size_t)id >= tok->n_vocab || !tok->entries[id].len) return FTI_TOKEN_NONE;
    return (fti_token_type)tok->entries[id].type;
}

FTIDEF int64_t fti_tokenizer_find(const fti_tokenizer *tok, const char *bytes, size_t len) {
    const fti__tok_slot *s;
    size_t i;
    if (!tok || (!bytes && len)) return -1;
    if (len == 0) return -1;
    s = fti__tok_lookup(tok, (const unsigned char *)bytes, len);
    if (s) return (int64_t)(s->id1 - 1);
    for (i = 0; i < tok->n_special; i++) {
        const fti__tok_entry *e = &tok->entries[tok->special[i]];
        if (e->len == len && !memcmp(tok->blob + e->off, bytes, len)) return tok->special[i];
    }
    return -1;
}

FTIDEF int64_t fti_tokenizer_special_id(const fti_tokenizer *tok, const char *text) {
    size_t i, len;
    if (!tok || !text) return -1;
    len = strlen(text);
    for (i = 0; i < tok->n_special; i++) {
        const fti__tok_entry *e = &tok->entries[tok->special[i]];
        if (e->len == len && !memcmp(tok->blob + e->off, text, len)) return tok->special[i];
    }
    return -1;
}

FTIDEF size_t fti_tokenizer_n_special(const fti_tokenizer *tok) { return tok ? tok->n_special : 0; }
FTIDEF uint32_t fti_tokenizer_special_at(const fti_tokenizer *tok, size_t i) {
    return (tok && i < tok->n_special) ? tok->special[i] : FTI__NO_ID;
}
FTIDEF int64_t fti_tokenizer_eot_id(const fti_tokenizer *tok) {
    return fti_tokenizer_special_id(tok, "<|endoftext|>");
}
FTIDEF void fti_tokenizer_sha256(const fti_tokenizer *tok, unsigned char digest[32]) {
    if (tok) memcpy(digest, tok->sha, 32);
    else memset(digest, 0, 32);
}
FTIDEF void fti_tokenizer_id_hex(const fti_tokenizer *tok, char hex[65]) {
    unsigned char d[32];
    fti_tokenizer_sha256(tok, d);
    fti_sha256_hex(d, hex);
}

FTIDEF fti_result fti_tokenizer_add_special(fti_tokenizer *tok, const char *text, size_t len,
                                            uint32_t *id_out) {
    size_t i;
    uint32_t id;
    fti_result r;
    if (!tok || !text || len == 0 || len > FTI_TOK_MAX_TOKEN_BYTES) return FTI_ERR_INVALID;
    for (i = 0; i < tok->n_special; i++) {
        const fti__tok_entry *e = &tok->entries[tok->special[i]];
        if (e->len == len && !memcmp(tok->blob + e->off, text, len)) {
            if (id_out) *id_out = tok->special[i];
            return FTI_OK;
        }
    }
    if (fti__tok_lookup(tok, (const unsigned char *)text, len)) return FTI_ERR_EXISTS;
    id = (uint32_t)tok->n_vocab;
    r = fti__tok_set(tok, id, text, len, FTI__NO_RANK, FTI_TOKEN_CONTROL);
    if (r != FTI_OK) return r;
    r = fti__tok_finish(tok, NULL, NULL);
    if (r != FTI_OK) return r;
    if (id_out) *id_out = id;
    return FTI_OK;
}

/* === tokenizer: BPE merge of one pre-token === */

/* Scratch for one encoding thread: merge arrays and the pre-token cache. */
#define FTI__CACHE_BYTES 22
#define FTI__CACHE_IDS 6
typedef struct fti__cache_slot {
    uint64_t h;
    unsigned char n_bytes, n_ids;
    unsigned char bytes[FTI__CACHE_BYTES];
    uint32_t ids[FTI__CACHE_IDS];
} fti__cache_slot;

typedef struct fti__enc_ctx {
    uint32_t *pos, *rank, *pid, *ids, *prv; /* (n+1) each */
    uint64_t *heap;
    size_t cap;
    fti__cache_slot *cache; /* NULL = no cache */
    size_t cache_mask;
} fti__enc_ctx;

static void fti__enc_ctx_free(fti__enc_ctx *c) {
    fti_free(c->pos);
    fti_free(c->rank);
    fti_free(c->pid);
    fti_free(c->ids);
    fti_free(c->prv);
    fti_free(c->heap);
    fti_free(c->cache);
    memset(c, 0, sizeof *c);
}

static fti_result fti__enc_ctx_reserve(fti__enc_ctx *c, size_t n) {
    size_t cap = c->cap ? c->cap : 64;
    if (n + 1 <= c->cap) return FTI_OK;
    while (cap < n + 1) cap *= 2;
    fti_free(c->pos);
    fti_free(c->rank);
    fti_free(c->pid);
    fti_free(c->ids);
    fti_free(c->prv);
    fti_free(c->heap);
    c->pos = (uint32_t *)fti_malloc(cap * sizeof(uint32_t));
    c->rank = (uint32_t *)fti_malloc(cap * sizeof(uint32_t));
    c->pid = (uint32_t *)fti_malloc(cap * sizeof(uint32_t));
    c->ids = (uint32_t *)fti_malloc(cap * sizeof(uint32_t));
    c->prv = (uint32_t *)fti_malloc(cap * sizeof(uint32_t));
    c->heap = (uint64_t *)fti_malloc(cap * 3 * sizeof(uint64_t));
    if (!c->pos || !c->rank || !c->pid || !c->ids || !c->prv || !c->heap) {
        c->cap = 0;
        return FTI_ERR_NOMEM;
    }
    c->cap = cap;
    return FTI_OK;
}

/* Rank and id of the bytes p[0..n) (n >= 2) as one token, below rank_limit. */
static uint32_t fti__pair_rank(const fti_tokenizer *tok, const unsigned char *p, size_t n,
                               uint32_t rank_limit, uint32_t *id) {
    const fti__tok_slot *s = fti__tok_lookup(tok, p, n);
    if (!s || s->rank >= rank_limit) return FTI__NO_RANK;
    *id = s->id1 - 1;
    return s->rank;
}

/* The short-word merge (tiktoken's): parts start at pos[0..m), pos[m] = n; rank[k] is the rank of
 * parts k and k+1 joined (pid[k] its id). Repeatedly merges the lowest, leftmost first. */
static size_t fti__bpe_small(const fti_tokenizer *tok, fti__enc_ctx *c, const unsigned char *w,
                             size_t n, uint32_t rank_limit) {
    uint32_t *pos = c->pos, *rank = c->rank, *pid = c->pid, *ids = c->ids;
    size_t m = n, k;
    for (k = 0; k < n; k++) {
        pos[k] = (uint32_t)k;
        ids[k] = tok->byte_id[w[k]];
    }
    pos[n] = (uint32_t)n;
    for (k = 0; k + 1 < n; k++) rank[k] = fti__pair_rank(tok, w + k, 2, rank_limit, &pid[k]);
    while (m > 1) {
        uint32_t best = FTI__NO_RANK;
        size_t kb = 0;
        for (k = 0; k + 1 < m; k++)
            if (rank[k] < best) {
                best = rank[k];
                kb = k;
            }
        if (best == FTI__NO_RANK) break;
        ids[kb] = pid[kb];
        /* drop part kb+1 */
        memmove(pos + kb + 1, pos + kb + 2, (m - kb - 1) * sizeof(uint32_t));
        memmove(ids + kb + 1, ids + kb + 2, (m - kb - 2) * sizeof(uint32_t));
        if (kb + 2 < m) {
            memmove(rank + kb + 1, rank + kb + 2, (m - kb - 2 - 1) * sizeof(uint32_t));
            memmove(pid + kb + 1, pid + kb + 2, (m - kb - 2 - 1) * sizeof(uint32_t));
        }
        m--;
        if (kb + 1 < m)
            rank[kb] =
                fti__pair_rank(tok, w + pos[kb], pos[kb + 2] - pos[kb], rank_limit, &pid[kb]);
        if (kb > 0)
            rank[kb - 1] = fti__pair_rank(tok, w + pos[kb - 1], pos[kb + 1] - pos[kb - 1],
                                          rank_limit, &pid[kb - 1]);
    }
    return m;
}

/* Min-heap of (rank << 32 | position). */
static void fti__heap_push(uint64_t *h, size_t *n, uint64_t v) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= v) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}
static uint64_t fti__heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], v = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t a = 2 * i + 1;
        if (a >= m) break;
        if (a + 1 < m && h[a + 1] < h[a]) a++;
        if (h[a] >= v) break;
        h[i] = h[a];
        i = a;
    }
    if (m) h[i] = v;
    return top;
}

/* The long-word merge: parts form a linked list keyed by start byte (end[k] is where part k
 * ends and the next starts; 0 marks a merged-away part), rank[k]/pid[k] describe the pair of part
 * k and its successor, and a min-heap holds (rank, start) entries; a popped entry whose rank no
 * longer matches rank[k] is stale and skipped. O(n log n). Ids go to c->ids; returns the count. */
static size_t fti__bpe_large(const fti_tokenizer *tok, fti__enc_ctx *c, const unsigned char *w,
                             size_t n, uint32_t rank_limit) {
    uint32_t *end = c->pos, *rank = c->rank, *pid = c->pid, *part = c->ids, *prv = c->prv;
    uint64_t *heap = c->heap;
    size_t nh = 0, k, m;
    for (k = 0; k < n; k++) {
        end[k] = (uint32_t)(k + 1);
        prv[k] = k ? (uint32_t)(k - 1) : FTI__NO_ID;
        part[k] = tok->byte_id[w[k]];
        rank[k] = k + 1 < n ? fti__pair_rank(tok, w + k, 2, rank_limit, &pid[k]) : FTI__NO_RANK;
        if (rank[k] != FTI__NO_RANK) fti__heap_push(heap, &nh, ((uint64_t)rank[k] << 32) | k);
    }
    while (nh) {
        uint64_t top = fti__heap_pop(heap, &nh);
        uint32_t r = (uint32_t)(top >> 32);
        size_t a = (size_t)(top & 0xFFFFFFFFu), b;
        if (end[a] == 0 || rank[a] != r) continue; /* merged away, or a stale entry */
        b = end[a];
        part[a] = pid[a];
        end[a] = end[b];
        end[b] = 0;
        if (end[a] < n) {
            prv[end[a]] = (uint32_t)a;
            rank[a] = fti__pair_rank(tok, w + a, end[end[a]] - a, rank_limit, &pid[a]);
            if (rank[a] != FTI__NO_RANK) fti__heap_push(heap, &nh, ((uint64_t)rank[a] << 32) | a);
        } else {
            rank[a] = FTI__NO_RANK;
        }
        if (prv[a] != FTI__NO_ID) {
            size_t p = prv[a];
            rank[p] = fti__pair_rank(tok, w + p, end[a] - p, rank_limit, &pid[p]);
            if (rank[p] != FTI__NO_RANK) fti__heap_push(heap, &nh, ((uint64_t)rank[p] << 32) | p);
        }
    }
    for (k = 0, m = 0; k < n; k = end[k]) part[m++] = part[k];
    return m;
}

/* BPE of one pre-token w[0..n) (n >= 1) into c->ids; returns the count. Only tokens whose rank is
 * below rank_limit are used (FTI__NO_RANK = all). */
#define FTI__BPE_SMALL_MAX 96
static fti_result fti__bpe(const fti_tokenizer *tok, fti__enc_ctx *c, const unsigned char *w,
                           size_t n, uint32_t rank_limit, size_t *n_ids) {
    if (fti__enc_ctx_reserve(c, n) != FTI_OK) return FTI_ERR_NOMEM;
    if (n <= FTI__BPE_SMALL_MAX) *n_ids = fti__bpe_small(tok, c, w, n, rank_limit);
    else *n_ids = fti__bpe_large(tok, c, w, n, rank_limit);
    return FTI_OK;
}

/* === tokenizer: encoding === */

FTIDEF fti_result fti_tokens_push(fti_tokens *t, uint32_t id) {
    if (!t) return FTI_ERR_INVALID;
    if (t->len == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        uint32_t *p;
        if (cap > ((size_t)-1) / sizeof(uint32_t)) return FTI_ERR_NOMEM;
        p = (uint32_t *)fti_realloc(t->ids, cap * sizeof(uint32_t));
        if (!p) return FTI_ERR_NOMEM;
        t->ids = p;
        t->cap = cap;
    }
    t->ids[t->len++] = id;
    return FTI_OK;
}

static fti_result fti__tokens_reserve(fti_tokens *t, size_t extra) {
    size_t need, cap;
    uint32_t *p;
    if (!fti_size_add(t->len, extra, &need)) return FTI_ERR_NOMEM;
    if (need <= t->cap) return FTI_OK;
    cap = t->cap ? t->cap : 256;
    while (cap < need) {
        if (cap > ((size_t)-1) / (2 * sizeof(uint32_t))) return FTI_ERR_NOMEM;
        cap *= 2;
    }
    p = (uint32_t *)fti_realloc(t->ids, cap * sizeof(uint32_t));
    if (!p) return FTI_ERR_NOMEM;
    t->ids = p;
    t->cap = cap;
    return FTI_OK;
}

FTIDEF void fti_tokens_free(fti_tokens *t) {
    if (!t) return;
    fti_free(t->ids);
    t->ids = NULL;
    t->len = t->cap = 0;
}

#define FTI__CACHE_SLOTS 8192
static void fti__enc_ctx_cache(fti__enc_ctx *c) {
    if (c->cache) return;
    c->cache = (fti__cache_slot *)fti_calloc(FTI__CACHE_SLOTS, sizeof(fti__cache_slot));
    c->cache_mask = c->cache ? FTI__CACHE_SLOTS - 1 : 0; /* no memory: just no cache */
}

/* Appends the ids of one pre-token. */
static fti_result fti__encode_word(const fti_tokenizer *tok, fti__enc_ctx *c,
                                   const unsigned char *w, size_t n, fti_tokens *out) {
    uint64_t h;
    const fti__tok_slot *s;
    fti__cache_slot *cs = NULL;
    size_t n_ids, k;
    if (out->len + 1 > out->cap && fti__tokens_reserve(out, 1 + out->len / 2) != FTI_OK)
        return FTI_ERR_NOMEM;
    if (n == 1) {
        out->ids[out->len++] = tok->byte_id[w[0]];
        return FTI_OK;
    }
    h = fti__tok_hash(w, n);
    s = fti__tok_lookup_h(tok, w, n, h);
    if (s && s->rank != FTI__NO_RANK) {
        out->ids[out->len++] = s->id1 - 1;
        return FTI_OK;
    }
    if (c->cache && n <= FTI__CACHE_BYTES) {
        cs = &c->cache[h & c->cache_mask];
        if (cs->h == h && cs->n_bytes == n && cs->n_ids && !memcmp(cs->bytes, w, n)) {
            if (fti__tokens_reserve(out, cs->n_ids) != FTI_OK) return FTI_ERR_NOMEM;
            memcpy(out->ids + out->len, cs->ids, cs->n_ids * sizeof(uint32_t));
            out->len += cs->n_ids;
            return FTI_OK;
        }
    }
    if (fti__bpe(tok, c, w, n, FTI__NO_RANK, &n_ids) != FTI_OK) return FTI_ERR_NOMEM;
    if (fti__tokens_reserve(out, n_ids) != FTI_OK) return FTI_ERR_NOMEM;
    for (k = 0; k < n_ids; k++) out->ids[out->len++] = c->ids[k];
    if (cs && n_ids <= FTI__CACHE_IDS) {
        cs->h = h;
        cs->n_bytes = (unsigned char)n;
        cs->n_ids = (unsigned char)n_ids;
        memcpy(cs->bytes, w, n);
        memcpy(cs->ids, c->ids, n_ids * sizeof(uint32_t));
    }
    return FTI_OK;
}

/* Pre-tokenizes and encodes text without special tokens. */
static fti_result fti__encode_ordinary(const fti_tokenizer *tok, fti__enc_ctx *c,
                                       const unsigned char *s, size_t n, fti_tokens *out) {
    size_t i = 0;
    fti_pretok kind = tok->pretok;
    while (i < n) {
        size_t e = fti__pretok_step(kind, s, n, i);
        if (fti__encode_word(tok, c, s + i, e - i, out) != FTI_OK) return FTI_ERR_NOMEM;
        i = e;
    }
    return FTI_OK;
}

/* Finds the first occurrence of a special token at or after `from` (the longest one when several
 * start there). Returns 1 and sets *pos, *id, *len; 0 when there is none. */
static int fti__find_special(const fti_tokenizer *tok, const unsigned char *s, size_t n,
                             size_t from, size_t *pos, uint32_t *id, size_t *len) {
    size_t p, k;
    for (p = from; p < n; p++) {
        size_t best_len = 0;
        uint32_t best = 0;
        if (!(tok->special_first[s[p] >> 3] & (1u << (s[p] & 7)))) continue;
        for (k = 0; k < tok->n_special; k++) {
            const fti__tok_entry *e = &tok->entries[tok->special[k]];
            if (e->len <= n - p && e->len > best_len &&
                !memcmp(s + p, tok->blob + e->off, e->len)) {
                best_len = e->len;
                best = tok->special[k];
            }
        }
        if (best_len) {
            *pos = p;
            *id = best;
            *len = best_len;
            return 1;
        }
    }
    return 0;
}

static fti_result fti__encode_text(const fti_tokenizer *tok, fti__enc_ctx *c,
                                   const unsigned char *s, size_t n, unsigned flags,
                                   fti_tokens *out) {
    size_t i = 0, pos, len;
    uint32_t id;
    if (!(flags & FTI_TOK_ALLOW_SPECIAL) || !tok->n_special)
        return fti__encode_ordinary(tok, c, s, n, out);
    while (fti__find_special(tok, s, n, i, &pos, &id, &len)) {
        if (fti__encode_ordinary(tok, c, s + i, pos - i, out) != FTI_OK) return FTI_ERR_NOMEM;
        if (fti_tokens_push(out, id) != FTI_OK) return FTI_ERR_NOMEM;
        i = pos + len;
    }
    return fti__encode_ordinary(tok, c, s + i, n - i, out);
}

FTIDEF fti_result fti_tokenizer_encode(const fti_tokenizer *tok, const char *text, size_t len,
                                       unsigned flags, fti_tokens *out) {
    fti__enc_ctx c;
    fti_result r;
    size_t len0;
    if (!tok || !out || (!text && len)) return FTI_ERR_INVALID;
    memset(&c, 0, sizeof c);
    if (len >= 16384) fti__enc_ctx_cache(&c);
    len0 = out->len;
    if (len && fti__tokens_reserve(out, len / 4 + 16) != FTI_OK) return FTI_ERR_NOMEM;
    r = fti__encode_text(tok, &c, (const unsigned char *)text, len, flags, out);
    if (r != FTI_OK) out->len = len0;
    fti__enc_ctx_free(&c);
    return r;
}

FTIDEF fti_result fti_tokenizer_count(const fti_tokenizer *tok, const char *text, size_t len,
                                      unsigned flags, size_t *n_tokens) {
    fti_tokens t;
    fti_result r;
    memset(&t, 0, sizeof t);
    if (n_tokens) *n_tokens = 0;
    r = fti_tokenizer_encode(tok, text, len, flags, &t);
    if (r == FTI_OK && n_tokens) *n_tokens = t.len;
    fti_tokens_free(&t);
    return r;
}

/* A cut at p is unsafe if a special token occurrence spans it (only with specials allowed). */
static int fti__cut_splits_special(const fti_tokenizer *tok, const unsigned char *s, size_t n,
                                   size_t p) {
    size_t k;
    for (k = 0; k < tok->n_special; k++) {
        const fti__tok_entry *e = &tok->entries[tok->special[k]];
        size_t q = p >= e->len ? p - e->len + 1 : 0;
        for (; q < p; q++)
            if (q + e->len <= n && q + e->len > p && !memcmp(s + q, tok->blob + e->off, e->len))
                return 1;
    }
    return 0;
}

typedef struct fti__enc_job {
    const fti_tokenizer *tok;
    const unsigned char *const *texts;
    const size_t *lens;
    unsigned flags;
    fti_tokens *outs;
    fti__enc_ctx *ctx; /* one per thread */
    fti_result *status; /* one per thread */
} fti__enc_job;

static void fti__enc_job_fn(void *arg, size_t begin, size_t end, int thread) {
    fti__enc_job *j = (fti__enc_job *)arg;
    size_t i;
    for (i = begin; i < end; i++) {
        fti_tokens *o = &j->outs[i];
        size_t len0 = o->len;
        fti_result r;
        if (j->status[thread] != FTI_OK) return;
        if (j->lens[i] >= 4096) fti__enc_ctx_cache(&j->ctx[thread]);
        r = fti__encode_text(j->tok, &j->ctx[thread], j->texts[i], j->lens[i], j->flags, o);
        if (r != FTI_OK) {
            o->len = len0;
            j->status[thread] = r;
        }
    }
}

/* Runs the job over n texts; each thread has its own context. */
static fti_result fti__enc_run(const fti_tokenizer *tok, fti_pool *pool,
                               const unsigned char *const *texts, const size_t *lens, size_t n,
                               unsigned flags, fti_tokens *outs) {
    int nt = fti_pool_threads(pool), t;
    fti__enc_job j;
    fti_result r = FTI_OK;
    j.tok = tok;
    j.texts = texts;
    j.lens = lens;
    j.flags = flags;
    j.outs = outs;
    j.ctx = (fti__enc_ctx *)fti_calloc((size_t)nt, sizeof(fti__enc_ctx));
    j.status = (fti_result *)fti_calloc((size_t)nt, sizeof(fti_result));
    if (!j.ctx || !j.status) {
        fti_free(j.ctx);
        fti_free(j.status);
        return FTI_ERR_NOMEM;
    }
    fti_pool_for(pool, n, 1, fti__enc_job_fn, &j);
    for (t = 0; t < nt; t++) {
        if (r == FTI_OK && j.status[t] != FTI_OK) r = j.status[t];
        fti__enc_ctx_free(&j.ctx[t]);
    }
    fti_free(j.ctx);
    fti_free(j.status);
    return r;
}

FTIDEF fti_result fti_tokenizer_encode_batch(const fti_tokenizer *tok, fti_pool *pool,
                                             const char *const *texts, const size_t *lens,
                                             size_t n, unsigned flags, fti_tokens *outs) {
    size_t i;
    if (!tok || (n && (!texts || !lens || !outs))) return FTI_ERR_INVALID;
    for (i = 0; i < n; i++)
        if (!texts[i] && lens[i]) return FTI_ERR_INVALID;
    if (n == 0) return FTI_OK;
    return fti__enc_run(tok, pool, (const unsigned char *const *)texts, lens, n, flags, outs);
}

FTIDEF fti_result fti_tokenizer_encode_pool(const fti_tokenizer *tok, fti_pool *pool,
                                            const char *text, size_t len, unsigned flags,
                                            fti_tokens *out) {
    const unsigned char *s = (const unsigned char *)text;
    int nt = fti_pool_threads(pool);
    size_t target, n_chunks = 0, cap, start, i, total;
    const unsigned char **texts = NULL;
    size_t *lens = NULL;
    fti_tokens *outs = NULL;
    fti_result r;
    if (!tok || !out || (!text && len)) return FTI_ERR_INVALID;
    if (nt <= 1 || len < ((size_t)1 << 17)) return fti_tokenizer_encode(tok, text, len, flags, out);
    /* about 8 chunks per thread, at least 32 KiB each */
    target = len / ((size_t)nt * 8);
    if (target < 32768) target = 32768;
    cap = len / target + 2;
    texts = (const unsigned char **)fti_malloc(cap * sizeof(*texts));
    lens = (size_t *)fti_malloc(cap * sizeof(size_t));
    outs = (fti_tokens *)fti_calloc(cap, sizeof(fti_tokens));
    if (!texts || !lens || !outs) {
        r = FTI_ERR_NOMEM;
        goto done;
    }
    start = 0;
    while (start < len) {
        size_t p = len;
        if (n_chunks + 2 < cap) {
            size_t want = start + target;
            while (want < len) {
                size_t q = fti__find_cut(s, len, want, want + 65536);
                if (!q) {
                    want += 65536;
                    continue;
                }
                if ((flags & FTI_TOK_ALLOW_SPECIAL) && fti__cut_splits_special(tok, s, len, q)) {
                    want = q + 1;
                    continue;
                }
                p = q;
                break;
            }
        }
        texts[n_chunks] = s + start;
        lens[n_chunks] = p - start;
        n_chunks++;
        start = p;
    }
    r = fti__enc_run(tok, pool, texts, lens, n_chunks, flags, outs);
    if (r != FTI_OK) goto done;
    for (i = 0, total = 0; i < n_chunks; i++) total += outs[i].len;
    r = fti__tokens_reserve(out, total);
    if (r != FTI_OK) goto done;
    for (i = 0; i < n_chunks; i++) {
        if (outs[i].len) memcpy(out->ids + out->len, outs[i].ids, outs[i].len * sizeof(uint32_t));
        out->len += outs[i].len;
    }
done:
    if (outs)
        for (i = 0; i < cap; i++) fti_tokens_free(&outs[i]);
    fti_free(outs);
    fti_free(texts);
    fti_free(lens);
    return r;
}

/* === tokenizer: decoding === */

FTIDEF fti_result fti_tokenizer_decode(const fti_tokenizer *tok, const uint32_t *ids, size_t n,
                                       fti_buf *out) {
    size_t i;
    if (!tok || !out || (!ids && n)) return FTI_ERR_INVALID;
    for (i = 0; i < n; i++) {
        const fti__tok_entry *e;
        if ((size_t)ids[i] >= tok->n_vocab || !tok->entries[ids[i]].len) return FTI_ERR_INVALID;
        e = &tok->entries[ids[i]];
        fti_buf_append(out, tok->blob + e->off, e->len);
        if (out->oom) return FTI_ERR_NOMEM;
    }
    return FTI_OK;
}

/* Bytes a UTF-8 sequence starting with b0 needs (0 if b0 cannot start one). */
static size_t fti__utf8_need(unsigned b0) {
    if (b0 < 0x80) return 1;
    if (b0 >= 0xC2 && b0 <= 0xDF) return 2;
    if (b0 >= 0xE0 && b0 <= 0xEF) return 3;
    if (b0 >= 0xF0 && b0 <= 0xF4) return 4;
    return 0;
}

/* 1 if s[0..n) (n < needed length) can still become a valid character. */
static int fti__utf8_prefix_ok(const unsigned char *s, size_t n) {
    size_t k;
    if (n >= 2) {
        unsigned b0 = s[0], b1 = s[1];
        if ((b1 & 0xC0) != 0x80) return 0;
        if (b0 == 0xE0 && b1 < 0xA0) return 0;
        if (b0 == 0xED && b1 > 0x9F) return 0;
        if (b0 == 0xF0 && b1 < 0x90) return 0;
        if (b0 == 0xF4 && b1 > 0x8F) return 0;
    }
    for (k = 2; k < n; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    return 1;
}

static void fti__detok_emit(fti_detok *d, const unsigned char *s, size_t n, int final,
                            fti_buf *out) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t l, need;
        if (s[i] < 0x80) {
            size_t j = i + 1;
            while (j < n && s[j] < 0x80) j++;
            fti_buf_append(out, s + i, j - i);
            i = j;
            continue;
        }
        l = fti__utf8_char(s, n, i, &cp);
        if (l) {
            fti_buf_append(out, s + i, l);
            i += l;
            continue;
        }
        need = fti__utf8_need(s[i]);
        if (!final && need && n - i < need && fti__utf8_prefix_ok(s + i, n - i)) {
            memcpy(d->held, s + i, n - i);
            d->n_held = n - i;
            return;
        }
        if (d->repair) fti_buf_append(out, "\xEF\xBF\xBD", 3);
        else fti_buf_append(out, s + i, 1);
        i++;
    }
}

FTIDEF fti_result fti_detok_push(fti_detok *d, const fti_tokenizer *tok, uint32_t id,
                                 fti_buf *out) {
    const fti__tok_entry *e;
    unsigned char small[64];
    size_t n;
    if (!d || !tok || !out) return FTI_ERR_INVALID;
    if ((size_t)id >= tok->n_vocab || !tok->entries[id].len) return FTI_ERR_INVALID;
    e = &tok->entries[id];
    if (d->n_held > 3) d->n_held = 0; /* defensive: a corrupted struct */
    n = d->n_held + e->len;
    if (n <= sizeof small) {
        memcpy(small, d->held, d->n_held);
        memcpy(small + d->n_held, tok->blob + e->off, e->len);
        d->n_held = 0;
        fti__detok_emit(d, small, n, 0, out);
    } else {
        unsigned char *tmp = (unsigned char *)fti_malloc(n);
        if (!tmp) return FTI_ERR_NOMEM;
        memcpy(tmp, d->held, d->n_held);
        memcpy(tmp + d->n_held, tok->blob + e->off, e->len);
        d->n_held = 0;
        fti__detok_emit(d, tmp, n, 0, out);
        fti_free(tmp);
    }
    return out->oom ? FTI_ERR_NOMEM : FTI_OK;
}

FTIDEF void fti_detok_flush(fti_detok *d, fti_buf *out) {
    unsigned char tmp[4];
    size_t n;
    if (!d || !out) return;
    n = d->n_held > 3 ? 0 : d->n_held;
    memcpy(tmp, d->held, n);
    d->n_held = 0;
    fti__detok_emit(d, tmp, n, 1, out);
}

/* === tokenizer: GPT-2 byte-to-unicode === */
/* GPT-2 writes each byte as a printable code point: '!'..'~', U+00A1..U+00AC and U+00AE..U+00FF
 * stand for themselves, the other 68 bytes become U+0100.. in byte order. */
static uint32_t fti__b2u(unsigned b) {
    unsigned k, n = 0;
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
    for (k = 0; k < b; k++)
        if (!((k >= 0x21 && k <= 0x7E) || (k >= 0xA1 && k <= 0xAC) || (k >= 0xAE && k <= 0xFF)))
            n++;
    return 0x100 + n;
}

/* Appends bytes in byte-to-unicode form. */
static void fti__b2u_append(fti_buf *out, const unsigned char *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char u[4];
        size_t l = fti_utf8_encode(fti__b2u(p[i]), u);
        fti_buf_append(out, u, l);
    }
}

/* Inverse: decodes a byte-to-unicode string into out (at most cap bytes). Returns the byte count,
 * or (size_t)-1 if a character is not in the mapping or the string is not UTF-8. */
static size_t fti__u2b(const unsigned char *s, size_t n, unsigned char *out, size_t cap,
                       const int16_t *u2b) {
    size_t i = 0, m = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = fti__utf8_char(s, n, i, &cp);
        if (!l || cp >= 0x200 || u2b[cp] < 0 || m >= cap) return (size_t)-1;
        out[m++] = (unsigned char)u2b[cp];
        i += l;
    }
    return m;
}

static void fti__u2b_table(int16_t u2b[0x200]) {
    unsigned b;
    for (b = 0; b < 0x200; b++) u2b[b] = -1;
    for (b = 0; b < 256; b++) u2b[fti__b2u(b)] = (int16_t)b;
}

/* === tokenizer: loading === */

static const fti_tokenizer_opts *fti__tok_opts(const fti_tokenizer_opts *o,
                                               fti_tokenizer_opts *tmp) {
    if (o) return o;
    memset(tmp, 0, sizeof *tmp);
    return tmp;
}

/* Adds opts' extra special tokens after the largest id. */
static fti_result fti__tok_add_opt_specials(fti_tokenizer *tok, const fti_tokenizer_opts *o,
                                            const char *name, fti_error *err) {
    size_t i;
    for (i = 0; o->special && i < o->n_special; i++) {
        const char *sp = o->special[i];
        size_t len = sp ? strlen(sp) : 0;
        size_t k;
        int dup = 0;
        if (!len || len > FTI_TOK_MAX_TOKEN_BYTES)
            return fti_error_set(err, FTI_ERR_INVALID, "%s: special token %u is empty or too long",
                                 name, (unsigned)i);
        for (k = 0; k < tok->n_vocab; k++)
            if (tok->entries[k].len == len && tok->entries[k].type == FTI_TOKEN_CONTROL &&
                !memcmp(tok->blob + tok->entries[k].off, sp, len))
                dup = 1;
        if (dup) continue;
        if (fti__tok_set(tok, (uint32_t)tok->n_vocab, sp, len, FTI__NO_RANK, FTI_TOKEN_CONTROL) !=
            FTI_OK)
            return fti_error_set(err, FTI_ERR_NOMEM, "%s: cannot add special token", name);
    }
    return FTI_OK;
}

/* Known tiktoken rank files (by SHA-256 of the file). */
typedef struct fti__known_tiktoken {
    const char *sha_hex;
    fti_pretok pretok;
    const char *specials; /* "text=id;..." */
} fti__known_tiktoken;
static const fti__known_tiktoken fti__known[] = {
    {"306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930", FTI_PRETOK_GPT2,
     "<|endoftext|>=50256;"},
    {"223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7", FTI_PRETOK_CL100K,
     "<|endoftext|>=100257;<|fim_prefix|>=100258;<|fim_middle|>=100259;<|fim_suffix|>=100260;"
     "<|endofprompt|>=100276;"},
    {"446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d", FTI_PRETOK_O200K,
     "<|endoftext|>=199999;<|endofprompt|>=200018;"},
};

static fti_result fti__tok_add_spec_list(fti_tokenizer *tok, const char *list) {
    while (*list) {
        const char *eq = strchr(list, '='), *semi = strchr(list, ';');
        unsigned long id;
        fti_result r;
        if (!eq || !semi) return FTI_ERR_INVALID;
        id = strtoul(eq + 1, NULL, 10);
        if (id < tok->n_vocab && tok->entries[id].len) return FTI_ERR_EXISTS;
        r = fti__tok_set(tok, (uint32_t)id, list, (size_t)(eq - list), FTI__NO_RANK,
                         FTI_TOKEN_CONTROL);
        if (r != FTI_OK) return r;
        list = semi + 1;
    }
    return FTI_OK;
}

static int fti__b64_val(unsigned c) {
    if (c >= 'A' && c <= 'Z') return (int)(c - 'A');
    if (c >= 'a' && c <= 'z') return (int)(c - 'a' + 26);
    if (c >= '0' && c <= '9') return (int)(c - '0' + 52);
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Strict base64 (padding optional); returns the byte count or (size_t)-1. */
static size_t fti__b64_decode(const unsigned char *s, size_t n, unsigned char *out, size_t cap) {
    size_t i, m = 0, pad = 0;
    uint32_t acc = 0;
    int bits = 0;
    while (n && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (pad && (n + pad) % 4) return (size_t)-1;
    for (i = 0; i < n; i++) {
        int v = fti__b64_val(s[i]);
        if (v < 0) return (size_t)-1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (m >= cap) return (size_t)-1;
            out[m++] = (unsigned char)(acc >> bits);
        }
    }
    if (n % 4 == 1) return (size_t)-1;
    if (bits && (acc & ((1u << bits) - 1))) return (size_t)-1; /* nonzero padding bits */
    return m;
}

static fti_result fti__load_tiktoken(const unsigned char *d, size_t len, const char *name,
                                     const fti_tokenizer_opts *o, fti_tokenizer **out,
                                     fti_error *err) {
    fti_tokenizer *tok = fti__tok_new();
    size_t pos = 0, line = 0, i;
    unsigned char digest[32], bytes[FTI_TOK_MAX_TOKEN_BYTES];
    char hex[65];
    const fti__known_tiktoken *known = NULL;
    fti_result r = FTI_OK;
    if (!tok) return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", name);
    fti_sha256_buf(d, len, digest);
    fti_sha256_hex(digest, hex);
    for (i = 0; i < sizeof fti__known / sizeof fti__known[0]; i++)
        if (!strcmp(hex, fti__known[i].sha_hex)) known = &fti__known[i];
    while (pos < len) {
        const unsigned char *ln = d + pos, *sp, *nl;
        size_t ll, nb;
        unsigned long rank = 0;
        size_t k;
        nl = (const unsigned char *)memchr(ln, '\n', len - pos);
        ll = nl ? (size_t)(nl - ln) : len - pos;
        pos += ll + (nl ? 1 : 0);
        line++;
        if (ll && ln[ll - 1] == '\r') ll--;
        if (ll == 0) continue;
        sp = (const unsigned char *)memchr(ln, ' ', ll);
        if (!sp) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "%s: line %lu: expected \"<base64> <rank>\"",
                              name, (unsigned long)line);
            goto fail;
        }
        nb = fti__b64_decode(ln, (size_t)(sp - ln), bytes, sizeof bytes);
        if (nb == (size_t)-1 || nb == 0) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "%s: line %lu: bad base64 token", name,
                              (unsigned long)line);
            goto fail;
        }
        k = (size_t)(sp - ln) + 1;
        if (k >= ll) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "%s: line %lu: missing rank", name,
                              (unsigned long)line);
            goto fail;
        }
        for (; k < ll; k++) {
            if (ln[k] < '0' || ln[k] > '9' || rank >= FTI_TOK_MAX_VOCAB) {
                r = fti_error_set(err,
                                  ln[k] >= '0' && ln[k] <= '9' ? FTI_ERR_LIMIT : FTI_ERR_FORMAT,
                                  "%s: line %lu: bad rank (a number below %lu expected)", name,
                                  (unsigned long)line, (unsigned long)FTI_TOK_MAX_VOCAB);
                goto fail;
            }
            rank = rank * 10 + (unsigned long)(ln[k] - '0');
        }
        if (rank >= FTI_TOK_MAX_VOCAB) {
            r = fti_error_set(err, FTI_ERR_LIMIT, "%s: line %lu: rank %lu exceeds the limit %lu",
                              name, (unsigned long)line, rank, (unsigned long)FTI_TOK_MAX_VOCAB);
            goto fail;
        }
        r = fti__tok_set(tok, (uint32_t)rank, bytes, nb, (uint32_t)rank, FTI_TOKEN_NORMAL);
        if (r == FTI_ERR_EXISTS) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "%s: line %lu: rank %lu appears twice", name,
                              (unsigned long)line, rank);
            goto fail;
        }
        if (r != FTI_OK) {
            r = fti_error_set(err, r, "%s: line %lu: %s", name, (unsigned long)line,
                              fti_result_str(r));
            goto fail;
        }
    }
    tok->pretok = o->pretok ? o->pretok : known ? known->pretok : FTI_PRETOK_GPT2;
    if (known && !o->special && !o->no_default_special) {
        r = fti__tok_add_spec_list(tok, known->specials);
        if (r != FTI_OK) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "%s: a special token's id is taken", name);
            goto fail;
        }
    }
    r = fti__tok_add_opt_specials(tok, o, name, err);
    if (r != FTI_OK) goto fail;
    r = fti__tok_finish(tok, name, err);
    if (r != FTI_OK) goto fail;
    *out = tok;
    return FTI_OK;
fail:
    fti_tokenizer_free(tok);
    return r;
}

/* fti's own format. */
static fti_result fti__load_fti(const unsigned char *d, size_t len, const char *name,
                                const fti_tokenizer_opts *o, fti_tokenizer **out, fti_error *err) {
    fti_reader rd;
    uint32_t version, pretok, n_vocab, n_tokens, i, prev_id = 0;
    unsigned char digest[32];
    fti_tokenizer *tok;
    fti_result r;
    if (len < 24 + 32)
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: truncated (%lu bytes, header needs 56)",
                             name, (unsigned long)len);
    fti_sha256_buf(d, len - 32, digest);
    if (memcmp(digest, d + len - 32, 32) != 0)
        return fti_error_set(err, FTI_ERR_CHECKSUM, "%s: SHA-256 checksum mismatch (corrupt file)",
                             name);
    rd = fti_reader_make(d, len - 32);
    fti_read_bytes(&rd, 8);
    version = fti_read_u32(&rd);
    pretok = fti_read_u32(&rd);
    n_vocab = fti_read_u32(&rd);
    n_tokens = fti_read_u32(&rd);
    if (version != FTI__TOK_VERSION)
        return fti_error_set(err, FTI_ERR_UNSUPPORTED, "%s: format version %u (this fti reads 1)",
                             name, (unsigned)version);
    if (pretok < FTI_PRETOK_GPT2 || pretok > FTI_PRETOK_O200K)
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: unknown pre-tokenizer %u", name,
                             (unsigned)pretok);
    if (n_vocab > FTI_TOK_MAX_VOCAB || n_tokens > n_vocab)
        return fti_error_set(err, FTI_ERR_LIMIT, "%s: %u tokens in %u ids (limit %lu)", name,
                             (unsigned)n_tokens, (unsigned)n_vocab,
                             (unsigned long)FTI_TOK_MAX_VOCAB);
    if ((size_t)n_tokens * 12 > fti_reader_left(&rd))
        return fti_error_set(err, FTI_ERR_FORMAT, "%s: %u tokens cannot fit in %lu bytes", name,
                             (unsigned)n_tokens, (unsigned long)len);
    tok = fti__tok_new();
    if (!tok) return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", name);
    tok->pretok = (fti_pretok)pretok;
    for (i = 0; i < n_tokens; i++) {
        uint32_t id = fti_read_u32(&rd), rank;
        unsigned type = fti_read_u8(&rd), tlen;
        const void *bytes;
        rank = fti_read_u32(&rd);
        tlen = fti_read_u16(&rd);
        bytes = fti_read_bytes(&rd, tlen);
        if (rd.err || !bytes) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "%s: truncated at token record %u", name,
                              (unsigned)i);
            goto fail;
        }
        if (id >= n_vocab || (i && id <= prev_id)) {
            r = fti_error_set(err, FTI_ERR_FORMAT,
                              "%s: token record %u: id %u out of order or >= %u", name, (unsigned)i,
                              (unsigned)id, (unsigned)n_vocab);
            goto fail;
        }
        if (type != FTI_TOKEN_NORMAL && type != FTI_TOKEN_CONTROL) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "%s: token %u: bad type %u", name, (unsigned)id,
                              type);
            goto fail;
        }
        if (tlen == 0 || tlen > FTI_TOK_MAX_TOKEN_BYTES) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "%s: token %u: length %u", name, (unsigned)id,
                              tlen);
            goto fail;
        }
        r = fti__tok_set(tok, id, bytes, tlen, rank, type);
        if (r != FTI_OK) {
            r = fti_error_set(err, r, "%s: token %u: %s", name, (unsigned)id, fti_result_str(r));
            goto fail;
        }
        prev_id = id;
    }
    if (fti_reader_left(&rd) != 0) {
        r = fti_error_set(err, FTI_ERR_FORMAT, "%s: %lu stray bytes after the tokens", name,
                          (unsigned long)fti_reader_left(&rd));
        goto fail;
    }
    r = fti__tok_grow(tok, n_vocab);
    if (r != FTI_OK) {
        r = fti_error_set(err, r, "%s: %s", name, fti_result_str(r));
        goto fail;
    }
    if (o->pretok) tok->pretok = o->pretok;
    r = fti__tok_add_opt_specials(tok, o, name, err);
    if (r != FTI_OK) goto fail;
    r = fti__tok_finish(tok, name, err);
    if (r != FTI_OK) goto fail;
    *out = tok;
    return FTI_OK;
fail:
    fti_tokenizer_free(tok);
    return r;
}

FTIDEF fti_result fti_tokenizer_load_mem(const void *data, size_t len, const char *name,
                                         const fti_tokenizer_opts *opts, fti_tokenizer **out,
                                         fti_error *err) {
    fti_tokenizer_opts tmp;
    const fti_tokenizer_opts *o = fti__tok_opts(opts, &tmp);
    const unsigned char *d = (const unsigned char *)data;
    size_t max = o->max_file_bytes ? o->max_file_bytes : FTI_TOK_MAX_FILE_BYTES;
    if (!name) name = "tokenizer";
    if (!out || (!data && len))
        return fti_error_set(err, FTI_ERR_INVALID, "%s: bad arguments", name);
    *out = NULL;
    if (len > max)
        return fti_error_set(err, FTI_ERR_LIMIT, "%s: %lu bytes exceeds the limit %lu", name,
                             (unsigned long)len, (unsigned long)max);
    if (len >= 8 && !memcmp(d, FTI__TOK_MAGIC, 8)) return fti__load_fti(d, len, name, o, out, err);
    if (len && d[0] == '{')
        return fti_error_set(err, FTI_ERR_UNSUPPORTED,
                             "%s: a JSON vocabulary: load encoder.json with its vocab.bpe "
                             "(fti_tokenizer_load_gpt2)", name);
    if (len == 0) return fti_error_set(err, FTI_ERR_FORMAT, "%s: empty file", name);
    return fti__load_tiktoken(d, len, name, o, out, err);
}

FTIDEF fti_result fti_tokenizer_load(const char *path, const fti_tokenizer_opts *opts,
                                     fti_tokenizer **out, fti_error *err) {
    fti_tokenizer_opts tmp;
    const fti_tokenizer_opts *o = fti__tok_opts(opts, &tmp);
    size_t max = o->max_file_bytes ? o->max_file_bytes : FTI_TOK_MAX_FILE_BYTES;
    void *data = NULL;
    size_t len = 0;
    int is_json;
    fti_result r;
    if (!path || !out) return fti_error_set(err, FTI_ERR_INVALID, "tokenizer: bad arguments");
    *out = NULL;
    r = fti_file_read(path, max, &data, &len, err);
    if (r != FTI_OK) return r;
    {
        const char *c = (const char *)data, *e = c + len;
        while (c < e && (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r')) c++;
        is_json = c < e && *c == '{';
    }
    if (is_json) {
        /* GPT-2 encoder.json: vocab.bpe beside it */
        const char *base = fti_path_base(path);
        size_t dir_len = (size_t)(base - path);
        char *bpe = (char *)fti_malloc(dir_len + 10);
        fti_free(data);
        if (!bpe) return fti_error_set(err, FTI_ERR_NOMEM, "%s: out of memory", path);
        memcpy(bpe, path, dir_len);
        memcpy(bpe + dir_len, "vocab.bpe", 10);
        r = fti_tokenizer_load_gpt2(path, bpe, opts, out, err);
        fti_free(bpe);
        return r;
    }
    r = fti_tokenizer_load_mem(data, len, path, opts, out, err);
    fti_free(data);
    return r;
}

FTIDEF fti_result fti_tokenizer_load_gpt2_mem(const void *encoder_json, size_t encoder_len,
                                              const void *vocab_bpe, size_t vocab_len,
                                              const fti_tokenizer_opts *opts, fti_tokenizer **out,
                                              fti_error *err) {
    fti_tokenizer_opts tmp;
    const fti_tokenizer_opts *o = fti__tok_opts(opts, &tmp);
    fti_json_opts jo;
    fti_json_doc *doc = NULL;
    const fti_json *root, *m;
    fti_tokenizer *tok = NULL;
    int16_t u2b[0x200];
    unsigned char bytes[FTI_TOK_MAX_TOKEN_BYTES * 2];
    const unsigned char *v = (const unsigned char *)vocab_bpe;
    size_t pos = 0, line = 0, n_merges = 0, i;
    fti_result r;
    if (!out || (!encoder_json && encoder_len) || (!vocab_bpe && vocab_len))
        return fti_error_set(err, FTI_ERR_INVALID, "gpt2: bad arguments");
    *out = NULL;
    fti__u2b_table(u2b);
    memset(&jo, 0, sizeof jo);
    jo.max_depth = 4;
    r = fti_json_parse((const char *)encoder_json, encoder_len, &jo, &doc, NULL, err);
    if (r != FTI_OK) {
        fti_error_prefix(err, "encoder.json");
        return r;
    }
    root = fti_json_root(doc);
    if (!root || root->type != FTI_JSON_OBJECT) {
        fti_json_free(doc);
        return fti_error_set(err, FTI_ERR_FORMAT, "encoder.json: not a JSON object");
    }
    tok = fti__tok_new();
    if (!tok) {
        fti_json_free(doc);
        return fti_error_set(err, FTI_ERR_NOMEM, "encoder.json: out of memory");
    }
    tok->pretok = o->pretok ? o->pretok : FTI_PRETOK_GPT2;
    for (m = root->child; m; m = m->next) {
        size_t nb;
        if (m->type != FTI_JSON_NUMBER || !m->is_int || m->i < 0 ||
            m->i >= (int64_t)FTI_TOK_MAX_VOCAB) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "encoder.json: token \"%.40s\": id is not an "
                              "integer in [0, %lu)", m->key ? m->key : "",
                              (unsigned long)FTI_TOK_MAX_VOCAB);
            goto fail;
        }
        nb = fti__u2b((const unsigned char *)m->key, m->key_len, bytes, FTI_TOK_MAX_TOKEN_BYTES,
                      u2b);
        if (nb == (size_t)-1 || nb == 0) {
            /* not in byte-to-unicode form: an added (special) token, taken as raw text */
            if (m->key_len == 0 || m->key_len > FTI_TOK_MAX_TOKEN_BYTES) {
                r = fti_error_set(err, FTI_ERR_FORMAT, "encoder.json: token %ld: bad length",
                                  (long)m->i);
                goto fail;
            }
            r = fti__tok_set(tok, (uint32_t)m->i, m->key, m->key_len, FTI__NO_RANK,
                             FTI_TOKEN_CONTROL);
        } else {
            r = fti__tok_set(tok, (uint32_t)m->i, bytes, nb, FTI__NO_RANK, FTI_TOKEN_NORMAL);
        }
        if (r != FTI_OK) {
            r = fti_error_set(err, r == FTI_ERR_EXISTS ? FTI_ERR_FORMAT : r,
                              "encoder.json: token \"%.40s\" id %ld: %s", m->key ? m->key : "",
                              (long)m->i,
                              r == FTI_ERR_EXISTS ? "id used twice" : fti_result_str(r));
            goto fail;
        }
    }
    fti_json_free(doc);
    doc = NULL;
    /* byte tokens keep their id as rank; a hash table for lookups by bytes */
    r = fti__tok_finish(tok, "encoder.json", err);
    if (r != FTI_OK) goto fail;
    for (i = 0; i < 256; i++) tok->entries[tok->byte_id[i]].rank = tok->byte_id[i];
    /* merges: line k "left right" gives the token left+right rank 256 + k */
    while (pos < vocab_len) {
        const unsigned char *ln = v + pos, *nl, *sp;
        size_t ll, nl_len, nr;
        const fti__tok_slot *sl, *sr, *st;
        nl = (const unsigned char *)memchr(ln, '\n', vocab_len - pos);
        ll = nl ? (size_t)(nl - ln) : vocab_len - pos;
        pos += ll + (nl ? 1 : 0);
        line++;
        if (ll && ln[ll - 1] == '\r') ll--;
        if (ll == 0 || (line == 1 && ll >= 8 && !memcmp(ln, "#version", 8))) continue;
        sp = (const unsigned char *)memchr(ln, ' ', ll);
        if (!sp || memchr(sp + 1, ' ', ll - (size_t)(sp - ln) - 1)) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "vocab.bpe: line %lu: expected \"left right\"",
                              (unsigned long)line);
            goto fail;
        }
        nl_len = fti__u2b(ln, (size_t)(sp - ln), bytes, FTI_TOK_MAX_TOKEN_BYTES, u2b);
        nr = nl_len == (size_t)-1 ? (size_t)-1
                                  : fti__u2b(sp + 1, ll - (size_t)(sp - ln) - 1, bytes + nl_len,
                                             FTI_TOK_MAX_TOKEN_BYTES, u2b);
        if (nl_len == (size_t)-1 || nr == (size_t)-1 || !nl_len || !nr) {
            r = fti_error_set(err, FTI_ERR_FORMAT,
                              "vocab.bpe: line %lu: not in GPT-2 byte-to-unicode form",
                              (unsigned long)line);
            goto fail;
        }
        sl = fti__tok_lookup(tok, bytes, nl_len);
        sr = fti__tok_lookup(tok, bytes + nl_len, nr);
        st = fti__tok_lookup(tok, bytes, nl_len + nr);
        if (!sl || !sr || !st) {
            r = fti_error_set(err, FTI_ERR_FORMAT,
                              "vocab.bpe: line %lu: merge of tokens not in encoder.json",
                              (unsigned long)line);
            goto fail;
        }
        if (n_merges + 256 >= FTI_TOK_MAX_VOCAB) {
            r = fti_error_set(err, FTI_ERR_LIMIT, "vocab.bpe: too many merges");
            goto fail;
        }
        if (tok->entries[st->id1 - 1].rank == FTI__NO_RANK)
            tok->entries[st->id1 - 1].rank = (uint32_t)(256 + n_merges);
        n_merges++;
    }
    /* ids past the merges that no merge makes are added tokens (GPT-2's <|endoftext|>) */
    for (i = 256 + n_merges; i < tok->n_vocab; i++) {
        fti__tok_entry *e = &tok->entries[i];
        if (e->len > 1 && e->type == FTI_TOKEN_NORMAL && e->rank == FTI__NO_RANK)
            e->type = FTI_TOKEN_CONTROL;
    }
    if (o->no_default_special) /* drop them */
        for (i = 0; i < tok->n_vocab; i++)
            if (tok->entries[i].type == FTI_TOKEN_CONTROL) tok->entries[i].len = 0;
    tok->pretok = o->pretok ? o->pretok : FTI_PRETOK_GPT2;
    r = fti__tok_add_opt_specials(tok, o, "gpt2", err);
    if (r != FTI_OK) goto fail;
    r = fti__tok_finish(tok, "gpt2", err);
    if (r != FTI_OK) goto fail;
    *out = tok;
    return FTI_OK;
fail:
    fti_json_free(doc);
    fti_tokenizer_free(tok);
    return r;
}

FTIDEF fti_result fti_tokenizer_load_gpt2(const char *encoder_json_path, const char *vocab_bpe_path,
                                          const fti_tokenizer_opts *opts, fti_tokenizer **out,
                                          fti_error *err) {
    fti_tokenizer_opts tmp;
    const fti_tokenizer_opts *o = fti__tok_opts(opts, &tmp);
    size_t max = o->max_file_bytes ? o->max_file_bytes : FTI_TOK_MAX_FILE_BYTES;
    void *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    fti_result r;
    if (!encoder_json_path || !vocab_bpe_path || !out)
        return fti_error_set(err, FTI_ERR_INVALID, "gpt2: bad arguments");
    r = fti_file_read(encoder_json_path, max, &a, &la, err);
    if (r != FTI_OK) return r;
    r = fti_file_read(vocab_bpe_path, max, &b, &lb, err);
    if (r != FTI_OK) {
        fti_free(a);
        return r;
    }
    r = fti_tokenizer_load_gpt2_mem(a, la, b, lb, opts, out, err);
    fti_free(a);
    fti_free(b);
    return r;
}

/* === tokenizer: saving === */

FTIDEF fti_result fti_tokenizer_serialize(const fti_tokenizer *tok, fti_buf *out) {
    size_t start;
    unsigned char digest[32];
    if (!tok || !out) return FTI_ERR_INVALID;
    start = out->len;
    if (fti__tok_serialize_body(tok, out) != FTI_OK) return FTI_ERR_NOMEM;
    fti_sha256_buf(out->data + start, out->len - start, digest);
    fti_buf_append(out, digest, 32);
    return out->oom ? FTI_ERR_NOMEM : FTI_OK;
}

FTIDEF fti_result fti_tokenizer_save(const fti_tokenizer *tok, const char *path, fti_error *err) {
    fti_buf b;
    fti_result r;
    if (!tok || !path) return fti_error_set(err, FTI_ERR_INVALID, "tokenizer save: bad arguments");
    memset(&b, 0, sizeof b);
    r = fti_tokenizer_serialize(tok, &b);
    if (r != FTI_OK) {
        fti_buf_free(&b);
        return fti_error_set(err, r, "%s: cannot serialize the tokenizer", path);
    }
    r = fti_file_write_atomic(path, b.data, b.len, err);
    fti_buf_free(&b);
    return r;
}

/* === tokenizer: GGUF metadata === */

typedef struct fti__rank_id {
    uint32_t rank, id;
} fti__rank_id;

static int fti__rank_id_cmp(const void *a, const void *b) {
    const fti__rank_id *x = (const fti__rank_id *)a, *y = (const fti__rank_id *)b;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

static const char *fti__gguf_pre(fti_pretok p) {
    switch (p) {
    case FTI_PRETOK_CL100K: return "llama-bpe";
    case FTI_PRETOK_O200K: return "gpt-4o";
    default: return "gpt-2";
    }
}

FTIDEF void fti_tokenizer_gguf_free(fti_tokenizer_gguf *g) {
    if (!g) return;
    fti_free(g->tokens);
    fti_free(g->token_types);
    fti_free(g->merges);
    fti_free(g->mem_);
    memset(g, 0, sizeof *g);
}

FTIDEF fti_result fti_tokenizer_gguf_make(const fti_tokenizer *tok, fti_tokenizer_gguf *g) {
    fti_buf blob;
    size_t *tok_off = NULL, *merge_off = NULL, n_ranked = 0, id, k, n_merges = 0;
    fti__rank_id *order = NULL;
    fti__enc_ctx c;
    fti_result r = FTI_ERR_NOMEM;
    if (!tok || !g) return FTI_ERR_INVALID;
    memset(g, 0, sizeof *g);
    memset(&blob, 0, sizeof blob);
    memset(&c, 0, sizeof c);
    tok_off = (size_t *)fti_malloc((tok->n_vocab + 1) * sizeof(size_t));
    g->token_types = (int32_t *)fti_malloc((tok->n_vocab + 1) * sizeof(int32_t));
    order = (fti__rank_id *)fti_malloc((tok->n_vocab + 1) * sizeof(fti__rank_id));
    if (!tok_off || !g->token_types || !order) goto done;
    for (id = 0; id < tok->n_vocab; id++) {
        const fti__tok_entry *e = &tok->entries[id];
        tok_off[id] = blob.len;
        if (!e->len) {
            fti_buf_printf(&blob, "[PAD%lu]", (unsigned long)id);
            g->token_types[id] = FTI_TOKEN_UNUSED;
        } else if (e->type == FTI_TOKEN_CONTROL) {
            fti_buf_append(&blob, tok->blob + e->off, e->len);
            g->token_types[id] = FTI_TOKEN_CONTROL;
        } else {
            fti__b2u_append(&blob, tok->blob + e->off, e->len);
            g->token_types[id] = FTI_TOKEN_NORMAL;
            if (e->len > 1 && e->rank != FTI__NO_RANK) {
                order[n_ranked].rank = e->rank;
                order[n_ranked].id = (uint32_t)id;
                n_ranked++;
            }
        }
        fti_buf_putc(&blob, 0);
    }
    if (blob.oom) goto done;
    qsort(order, n_ranked, sizeof *order, fti__rank_id_cmp);
    merge_off = (size_t *)fti_malloc((n_ranked + 1) * sizeof(size_t));
    if (!merge_off) goto done;
    for (k = 0; k < n_ranked; k++) {
        const fti__tok_entry *e = &tok->entries[order[k].id];
        size_t n_ids;
        if (fti__bpe(tok, &c, tok->blob + e->off, e->len, e->rank, &n_ids) != FTI_OK) goto done;
        if (n_ids != 2) continue; /* unreachable by merges: no merge for it */
        merge_off[n_merges++] = blob.len;
        {
            const fti__tok_entry *a = &tok->entries[c.ids[0]], *b = &tok->entries[c.ids[1]];
            fti__b2u_append(&blob, tok->blob + a->off, a->len);
            fti_buf_putc(&blob, ' ');
            fti__b2u_append(&blob, tok->blob + b->off, b->len);
            fti_buf_putc(&blob, 0);
        }
    }
    if (blob.oom) goto done;
    g->tokens = (char **)fti_malloc((tok->n_vocab + 1) * sizeof(char *));
    g->merges = (char **)fti_malloc((n_merges + 1) * sizeof(char *));
    if (!g->tokens || !g->merges) goto done;
    for (id = 0; id < tok->n_vocab; id++) g->tokens[id] = blob.data + tok_off[id];
    for (k = 0; k < n_merges; k++) g->merges[k] = blob.data + merge_off[k];
    g->n_tokens = tok->n_vocab;
    g->n_merges = n_merges;
    g->model = "gpt2";
    g->pre = fti__gguf_pre(tok->pretok);
    g->eos_id = fti_tokenizer_eot_id(tok);
    g->bos_id = g->eos_id;
    g->mem_ = blob.data;
    blob.data = NULL;
    r = FTI_OK;
done:
    fti__enc_ctx_free(&c);
    fti_free(tok_off);
    fti_free(merge_off);
    fti_free(order);
    fti_buf_free(&blob);
    if (r != FTI_OK) fti_tokenizer_gguf_free(g);
    return r;
}

FTIDEF fti_result fti_tokenizer_from_gguf(const char *const *tokens, const size_t *token_lens,
                                          const int32_t *types, size_t n_tokens,
                                          const char *const *merges, const size_t *merge_lens,
                                          size_t n_merges, const char *pre, fti_tokenizer **out,
                                          fti_error *err) {
    fti_tokenizer *tok;
    int16_t u2b[0x200];
    unsigned char bytes[FTI_TOK_MAX_TOKEN_BYTES * 2];
    fti_pretok pretok = FTI_PRETOK_GPT2;
    size_t i;
    fti_result r;
    if (!out || (n_tokens && (!tokens || !token_lens)) || (n_merges && (!merges || !merge_lens)))
        return fti_error_set(err, FTI_ERR_INVALID, "gguf tokenizer: bad arguments");
    *out = NULL;
    if (pre && strcmp(pre, "default") != 0) {
        pretok = fti_pretok_parse(pre);
        if (pretok == FTI_PRETOK_DEFAULT)
            return fti_error_set(err, FTI_ERR_UNSUPPORTED,
                                 "gguf tokenizer: pre-tokenizer \"%.40s\" is not supported", pre);
    }
    if (n_tokens > FTI_TOK_MAX_VOCAB)
        return fti_error_set(err, FTI_ERR_LIMIT, "gguf tokenizer: %lu tokens (limit %lu)",
                             (unsigned long)n_tokens, (unsigned long)FTI_TOK_MAX_VOCAB);
    fti__u2b_table(u2b);
    tok = fti__tok_new();
    if (!tok) return fti_error_set(err, FTI_ERR_NOMEM, "gguf tokenizer: out of memory");
    tok->pretok = pretok;
    r = fti__tok_grow(tok, n_tokens);
    if (r != FTI_OK) goto nomem;
    for (i = 0; i < n_tokens; i++) {
        int32_t type = types ? types[i] : FTI_TOKEN_NORMAL;
        if (!tokens[i] && token_lens[i]) {
            r = fti_error_set(err, FTI_ERR_INVALID, "gguf tokenizer: token %lu is NULL",
                              (unsigned long)i);
            goto fail;
        }
        if (type == FTI_TOKEN_UNUSED || type == FTI_TOKEN_UNKNOWN) continue;
        if (type == FTI_TOKEN_CONTROL || type == FTI_TOKEN_USER_DEFINED) {
            r = fti__tok_set(tok, (uint32_t)i, tokens[i], token_lens[i], FTI__NO_RANK,
                             FTI_TOKEN_CONTROL);
        } else if (type == FTI_TOKEN_NORMAL || type == FTI_TOKEN_BYTE) {
            size_t nb = fti__u2b((const unsigned char *)tokens[i], token_lens[i], bytes,
                                 FTI_TOK_MAX_TOKEN_BYTES, u2b);
            if (nb == (size_t)-1 || nb == 0) {
                r = fti_error_set(err, FTI_ERR_FORMAT,
                                  "gguf tokenizer: token %lu is not in GPT-2 byte-to-unicode form",
                                  (unsigned long)i);
                goto fail;
            }
            r = fti__tok_set(tok, (uint32_t)i, bytes, nb, FTI__NO_RANK, FTI_TOKEN_NORMAL);
        } else {
            r = fti_error_set(err, FTI_ERR_FORMAT, "gguf tokenizer: token %lu has type %ld",
                              (unsigned long)i, (long)type);
            goto fail;
        }
        if (r != FTI_OK) {
            r = fti_error_set(err, r == FTI_ERR_LIMIT ? FTI_ERR_FORMAT : r,
                              "gguf tokenizer: token %lu: %s", (unsigned long)i,
                              r == FTI_ERR_LIMIT ? "empty or too long" : fti_result_str(r));
            goto fail;
        }
    }
    r = fti__tok_finish(tok, "gguf tokenizer", err);
    if (r != FTI_OK) goto fail;
    for (i = 0; i < 256; i++) tok->entries[tok->byte_id[i]].rank = tok->byte_id[i];
    if (n_merges > FTI_TOK_MAX_VOCAB) {
        r = fti_error_set(err, FTI_ERR_LIMIT, "gguf tokenizer: %lu merges",
                          (unsigned long)n_merges);
        goto fail;
    }
    for (i = 0; i < n_merges; i++) {
        const unsigned char *m = (const unsigned char *)merges[i], *sp;
        size_t ml = merge_lens[i], nl, nr;
        const fti__tok_slot *st;
        sp = m ? (const unsigned char *)memchr(m, ' ', ml) : NULL;
        if (!sp) {
            r = fti_error_set(err, FTI_ERR_FORMAT, "gguf tokenizer: merge %lu has no space",
                              (unsigned long)i);
            goto fail;
        }
        nl = fti__u2b(m, (size_t)(sp - m), bytes, FTI_TOK_MAX_TOKEN_BYTES, u2b);
        nr = nl == (size_t)-1 ? nl
                              : fti__u2b(sp + 1, ml - (size_t)(sp - m) - 1, bytes + nl,
                                         FTI_TOK_MAX_TOKEN_BYTES, u2b);
        if (nl == (size_t)-1 || nr == (size_t)-1 || !nl || !nr ||
            !fti__tok_lookup(tok, bytes, nl) || !fti__tok_lookup(tok, bytes + nl, nr) ||
            !(st = fti__tok_lookup(tok, bytes, nl + nr))) {
            r = fti_error_set(err, FTI_ERR_FORMAT,
                              "gguf tokenizer: merge %lu does not join two tokens into a token",
                              (unsigned long)i);
            goto fail;
        }
        if (tok->entries[st->id1 - 1].rank == FTI__NO_RANK)
            tok->entries[st->id1 - 1].rank = (uint32_t)(256 + i);
    }
    r = fti__tok_finish(tok, "gguf tokenizer", err);
    if (r != FTI_OK) goto fail;
    *out = tok;
    return FTI_OK;
nomem:
    r = fti_error_set(err, FTI_ERR_NOMEM, "gguf tokenizer: out of memory");
fail:
    fti_tokenizer_free(tok);
    return r;
}

/* === tokenizer: training === */
/*
 * 1. Counting: texts are buffered; each flush cuts them into pieces (documents, special tokens
 *    removed, long documents cut at safe boundaries), pre-tokenizes the pieces on the pool's
 *    threads into per-thread word->count maps, and adds those into one map, in thread order.
 * 2. Merging: each unique word becomes a sequence of symbols (ids; bytes at first). Pairs of
 *    adjacent symbols have a count (sum of word counts) and a list of the words they occur in.
 *    A max-heap orders pairs by (count desc, left id asc, right id asc); entries are lazy: a
 *    popped entry whose count is stale is pushed back with the current count. Merging (a,b)->c
 *    rewrites only the words on (a,b)'s list and adjusts the counts of the neighbouring pairs,
 *    so no merge recounts the corpus.
 * A merged string that already is a token (possible: "a"+"bc" after "ab"+"c") reuses its id.
 */

typedef struct fti__wentry {
    uint64_t h;
    uint64_t count;
    size_t off;
    uint32_t len;
    uint32_t used;
} fti__wentry;

typedef struct fti__wmap {
    fti__wentry *e;
    size_t cap, n;
    unsigned char *blob;
    size_t blob_len, blob_cap;
    int oom;
} fti__wmap;

static void fti__wmap_free(fti__wmap *m) {
    fti_free(m->e);
    fti_free(m->blob);
    memset(m, 0, sizeof *m);
}

static int fti__wmap_grow(fti__wmap *m) {
    size_t cap = m->cap ? m->cap * 2 : 1024, i;
    fti__wentry *e = (fti__wentry *)fti_calloc(cap, sizeof(fti__wentry));
    if (!e) return 0;
    for (i = 0; i < m->cap; i++) {
        size_t k;
        if (!m->e[i].used) continue;
        k = (size_t)m->e[i].h & (cap - 1);
        while (e[k].used) k = (k + 1) & (cap - 1);
        e[k] = m->e[i];
    }
    fti_free(m->e);
    m->e = e;
    m->cap = cap;
    return 1;
}

/* Adds count to word w[0..n); returns the entry index or (size_t)-1 (sets oom). */
static size_t fti__wmap_add(fti__wmap *m, const unsigned char *w, size_t n, uint64_t h,
                            uint64_t count) {
    size_t k;
    if (m->oom) return (size_t)-1;
    if ((m->n + 1) * 2 > m->cap && !fti__wmap_grow(m)) {
        m->oom = 1;
        return (size_t)-1;
    }
    k = (size_t)h & (m->cap - 1);
    while (m->e[k].used) {
        fti__wentry *e = &m->e[k];
        if (e->h == h && e->len == n && !memcmp(m->blob + e->off, w, n)) {
            e->count += count;
            return k;
        }
        k = (k + 1) & (m->cap - 1);
    }
    if (m->blob_len + n > m->blob_cap) {
        size_t cap = m->blob_cap ? m->blob_cap * 2 : 65536;
        unsigned char *b;
        while (cap < m->blob_len + n) cap *= 2;
        b = (unsigned char *)fti_realloc(m->blob, cap);
        if (!b) {
            m->oom = 1;
            return (size_t)-1;
        }
        m->blob = b;
        m->blob_cap = cap;
    }
    memcpy(m->blob + m->blob_len, w, n);
    m->e[k].h = h;
    m->e[k].count = count;
    m->e[k].off = m->blob_len;
    m->e[k].len = (uint32_t)n;
    m->e[k].used = 1;
    m->blob_len += n;
    m->n++;
    return k;
}

struct fti_bpe_trainer {
    fti_bpe_train_opts o;
    unsigned char **special;
    size_t *special_len;
    size_t n_special;
    fti__wmap words;
    fti_buf pending;
    size_t *doc_end;
    size_t n_docs, cap_docs;
    fti_bpe_train_stats stats;
    int trained;
    int failed;
};

FTIDEF fti_result fti_bpe_trainer_create(const fti_bpe_train_opts *opts, fti_bpe_trainer **out) {
    fti_bpe_trainer *t;
    static const char *const def_special[] = {"<|endoftext|>"};
    const char *const *sp;
    size_t n_sp, i;
    if (!out) return FTI_ERR_INVALID;
    *out = NULL;
    t = (fti_bpe_trainer *)fti_calloc(1, sizeof *t);
    if (!t) return FTI_ERR_NOMEM;
    if (opts) t->o = *opts;
    if (!t->o.pretok) t->o.pretok = FTI_PRETOK_GPT2;
    if (t->o.pretok > FTI_PRETOK_O200K) {
        fti_free(t);
        return FTI_ERR_INVALID;
    }
    if (!t->o.vocab_size) t->o.vocab_size = 4096;
    if (!t->o.min_frequency) t->o.min_frequency = 2;
    if (!t->o.max_word_bytes) t->o.max_word_bytes = 256;
    if (t->o.max_word_bytes > FTI_TOK_MAX_TOKEN_BYTES)
        t->o.max_word_bytes = FTI_TOK_MAX_TOKEN_BYTES;
    sp = t->o.special;
    n_sp = t->o.n_special;
    if (!sp && !t->o.no_default_special) {
        sp = def_special;
        n_sp = 1;
    }
    if (!sp) n_sp = 0;
    if (t->o.vocab_size < 256 + n_sp || t->o.vocab_size > FTI_TOK_MAX_VOCAB) {
        fti_free(t);
        return FTI_ERR_INVALID;
    }
    t->special = (unsigned char **)fti_calloc(n_sp + 1, sizeof(unsigned char *));
    t->special_len = (size_t *)fti_calloc(n_sp + 1, sizeof(size_t));
    if (!t->special || !t->special_len) {
        fti_bpe_trainer_free(t);
        return FTI_ERR_NOMEM;
    }
    for (i = 0; i < n_sp; i++) {
        size_t len = sp[i] ? strlen(sp[i]) : 0;
        if (!len || len > FTI_TOK_MAX_TOKEN_BYTES) {
            fti_bpe_trainer_free(t);
            return FTI_ERR_INVALID;
        }
        t->special[i] = (unsigned char *)fti_strndup(sp[i], len);
        if (!t->special[i]) {
            fti_bpe_trainer_free(t);
            return FTI_ERR_NOMEM;
        }
        t->special_len[i] = len;
        t->n_special++;
    }
    t->o.special = NULL; /* the copies above are used */
    *out = t;
    return FTI_OK;
}

FTIDEF void fti_bpe_trainer_free(fti_bpe_trainer *t) {
    size_t i;
    if (!t) return;
    for (i = 0; i < t->n_special; i++) fti_free(t->special[i]);
    fti_free(t->special);
    fti_free(t->special_len);
    fti__wmap_free(&t->words);
    fti_buf_free(&t->pending);
    fti_free(t->doc_end);
    fti_free(t);
}

FTIDEF void fti_bpe_trainer_stats(const fti_bpe_trainer *t, fti_bpe_train_stats *stats) {
    if (!stats) return;
    if (!t) {
        memset(stats, 0, sizeof *stats);
        return;
    }
    *stats = t->stats;
    if (!t->trained) stats->n_unique = t->words.n;
}

/* One piece of ordinary text to count. */
typedef struct fti__piece {
    const unsigned char *p;
    size_t n;
} fti__piece;

typedef struct fti__count_job {
    fti_bpe_trainer *t;
    const fti__piece *pieces;
    fti__wmap *maps; /* one per thread; maps[0] may be the trainer's own */
    uint64_t *n_words;
} fti__count_job;

static void fti__count_words(fti_bpe_trainer *t, fti__wmap *m, const unsigned char *s, size_t n,
                             uint64_t *n_words) {
    size_t i = 0, maxw = t->o.max_word_bytes;
    while (i < n) {
        size_t e = fti__pretok_step(t->o.pretok, s, n, i), k;
        for (k = i; k < e; k += maxw) {
            size_t l = e - k < maxw ? e - k : maxw;
            fti__wmap_add(m, s + k, l, fti__tok_hash(s + k, l), 1);
        }
        (*n_words)++;
        i = e;
    }
}

static void fti__count_fn(void *arg, size_t begin, size_t end, int thread) {
    fti__count_job *j = (fti__count_job *)arg;
    size_t i;
    for (i = begin; i < end; i++)
        fti__count_words(j->t, &j->maps[thread], j->pieces[i].p, j->pieces[i].n,
                         &j->n_words[thread]);
}

/* Counts the pending documents. */
static fti_result fti__trainer_flush(fti_bpe_trainer *t) {
    fti__piece *pieces = NULL;
    size_t n_pieces = 0, cap = 0, d, start = 0, k;
    int nt = fti_pool_threads(t->o.pool), th;
    fti__count_job j;
    fti_result r = FTI_OK;
    const unsigned char *s = (const unsigned char *)t->pending.data;
    if (t->n_docs == 0) return FTI_OK;
    for (d = 0; d < t->n_docs; d++) {
        size_t end = t->doc_end[d], i = start;
        /* cut out special tokens, then cut long stretches at safe boundaries */
        while (i < end) {
            size_t best_pos = end, best_len = 0, p, q;
            for (k = 0; k < t->n_special; k++) {
                size_t L = t->special_len[k];
                for (p = i; p + L <= end && p < best_pos; p++) {
                    const unsigned char *hit =
                        (const unsigned char *)memchr(s + p, t->special[k][0], end - p);
                    if (!hit) break;
                    p = (size_t)(hit - s);
                    if (p + L > end || p >= best_pos) break;
                    if (!memcmp(s + p, t->special[k], L)) {
                        if (p < best_pos || L > best_len) {
                            best_pos = p;
                            best_len = L;
                        }
                        break;
                    }
                }
            }
            /* ordinary text [i, best_pos) */
            for (p = i; p < best_pos;) {
                size_t stop = best_pos;
                if (best_pos - p > ((size_t)1 << 20)) {
                    q = fti__find_cut(s, best_pos, p + ((size_t)1 << 20), best_pos);
                    if (q) stop = q;
                }
                if (n_pieces == cap) {
                    size_t nc = cap ? cap * 2 : 64;
                    fti__piece *np = (fti__piece *)fti_realloc(pieces, nc * sizeof *np);
                    if (!np) {
                        fti_free(pieces);
                        return FTI_ERR_NOMEM;
                    }
                    pieces = np;
                    cap = nc;
                }
                pieces[n_pieces].p = s + p;
                pieces[n_pieces].n = stop - p;
                n_pieces++;
                p = stop;
            }
            i = best_pos + best_len;
        }
        start = end;
    }
    j.t = t;
    j.pieces = pieces;
    j.maps = (fti__wmap *)fti_calloc((size_t)nt, sizeof(fti__wmap));
    j.n_words = (uint64_t *)fti_calloc((size_t)nt, sizeof(uint64_t));
    if (!j.maps || !j.n_words) {
        r = FTI_ERR_NOMEM;
        goto done;
    }
    if (nt == 1) {
        j.maps[0] = t->words; /* count straight into the trainer's map */
        fti__count_fn(&j, 0, n_pieces, 0);
        t->words = j.maps[0];
        memset(&j.maps[0], 0, sizeof j.maps[0]);
    } else {
        fti_pool_for(t->o.pool, n_pieces, 1, fti__count_fn, &j);
        for (th = 0; th < nt; th++) {
            fti__wmap *m = &j.maps[th];
            if (m->oom) t->words.oom = 1;
            for (k = 0; k < m->cap; k++)
                if (m->e[k].used)
                    fti__wmap_add(&t->words, m->blob + m->e[k].off, m->e[k].len, m->e[k].h,
                                  m->e[k].count);
        }
    }
    for (th = 0; th < nt; th++) t->stats.n_words += j.n_words[th];
    if (t->words.oom) r = FTI_ERR_NOMEM;
done:
    if (j.maps)
        for (th = 0; th < nt; th++) fti__wmap_free(&j.maps[th]);
    fti_free(j.maps);
    fti_free(j.n_words);
    fti_free(pieces);
    t->pending.len = 0;
    t->n_docs = 0;
    return r;
}

FTIDEF fti_result fti_bpe_trainer_add(fti_bpe_trainer *t, const char *text, size_t len) {
    if (!t || (!text && len)) return FTI_ERR_INVALID;
    if (t->trained || t->failed) return FTI_ERR_INVALID;
    if (len == 0) return FTI_OK;
    if (t->n_docs == t->cap_docs) {
        size_t cap = t->cap_docs ? t->cap_docs * 2 : 256;
        size_t *d = (size_t *)fti_realloc(t->doc_end, cap * sizeof(size_t));
        if (!d) return FTI_ERR_NOMEM;
        t->doc_end = d;
        t->cap_docs = cap;
    }
    fti_buf_append(&t->pending, text, len);
    if (t->pending.oom) {
        t->failed = 1;
        return FTI_ERR_NOMEM;
    }
    t->doc_end[t->n_docs++] = t->pending.len;
    t->stats.n_bytes += len;
    if (t->pending.len >= ((size_t)16 << 20)) {
        fti_result r = fti__trainer_flush(t);
        if (r != FTI_OK) t->failed = 1;
        return r;
    }
    return FTI_OK;
}

/* --- the merge loop --- */

typedef struct fti__pair {
    uint32_t a, b;
    int64_t count;
    uint32_t *w; /* words containing the pair (may hold stale entries and repeats) */
    uint32_t nw, cw;
    uint32_t stamp;
} fti__pair;

typedef struct fti__pheap_e {
    int64_t count;
    uint32_t a, b;
} fti__pheap_e;

typedef struct fti__merger {
    fti__pair *pairs;
    size_t n_pairs, cap_pairs;
    uint32_t *slot; /* pair index + 1 by hash of (a,b) */
    size_t slot_mask;
    fti__pheap_e *heap;
    size_t n_heap, cap_heap;
    uint32_t *touched;
    size_t n_touched, cap_touched;
    int oom;
} fti__merger;

static uint64_t fti__pair_hash(uint32_t a, uint32_t b) {
    uint64_t h = ((uint64_t)a << 32 | b) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

static int fti__pheap_less(const fti__pheap_e *x, const fti__pheap_e *y) {
    /* x is "greater priority" than y? used as: parent must not be less than child */
    if (x->count != y->count) return x->count < y->count;
    if (x->a != y->a) return x->a > y->a;
    return x->b > y->b;
}

static void fti__pheap_push(fti__merger *m, int64_t count, uint32_t a, uint32_t b) {
    fti__pheap_e e;
    size_t i;
    if (m->n_heap == m->cap_heap) {
        size_t cap = m->cap_heap ? m->cap_heap * 2 : 4096;
        fti__pheap_e *h = (fti__pheap_e *)fti_realloc(m->heap, cap * sizeof *h);
        if (!h) {
            m->oom = 1;
            return;
        }
        m->heap = h;
        m->cap_heap = cap;
    }
    e.count = count;
    e.a = a;
    e.b = b;
    i = m->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!fti__pheap_less(&m->heap[p], &e)) break;
        m->heap[i] = m->heap[p];
        i = p;
    }
    m->heap[i] = e;
}

static fti__pheap_e fti__pheap_pop(fti__merger *m) {
    fti__pheap_e top = m->heap[0], v = m->heap[--m->n_heap];
    size_t i = 0, n = m->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && fti__pheap_less(&m->heap[c], &m->heap[c + 1])) c++;
        if (!fti__pheap_less(&v, &m->heap[c])) break;
        m->heap[i] = m->heap[c];
        i = c;
    }
    if (n) m->heap[i] = v;
    return top;
}

/* Index of pair (a,b), created when absent (and create is set); (size_t)-1 if absent/no memory. */
static size_t fti__pair_get(fti__merger *m, uint32_t a, uint32_t b, int create) {
    size_t k = (size_t)fti__pair_hash(a, b) & m->slot_mask;
    for (;;) {
        uint32_t s = m->slot[k];
        if (!s) break;
        if (m->pairs[s - 1].a == a && m->pairs[s - 1].b == b) return s - 1;
        k = (k + 1) & m->slot_mask;
    }
    if (!create || m->oom) return (size_t)-1;
    if (m->n_pairs == m->cap_pairs) {
        size_t cap = m->cap_pairs ? m->cap_pairs * 2 : 4096;
        fti__pair *p = (fti__pair *)fti_realloc(m->pairs, cap * sizeof *p);
        if (!p) {
            m->oom = 1;
            return (size_t)-1;
        }
        m->pairs = p;
        m->cap_pairs = cap;
    }
    if ((m->n_pairs + 1) * 2 > m->slot_mask + 1) {
        size_t cap = (m->slot_mask + 1) * 2, i;
        uint32_t *ns = (uint32_t *)fti_calloc(cap, sizeof(uint32_t));
        if (!ns) {
            m->oom = 1;
            return (size_t)-1;
        }
        for (i = 0; i < m->n_pairs; i++) {
            size_t q = (size_t)fti__pair_hash(m->pairs[i].a, m->pairs[i].b) & (cap - 1);
            while (ns[q]) q = (q + 1) & (cap - 1);
            ns[q] = (uint32_t)i + 1;
        }
        fti_free(m->slot);
        m->slot = ns;
        m->slot_mask = cap - 1;
        k = (size_t)fti__pair_hash(a, b) & m->slot_mask;
        while (m->slot[k]) k = (k + 1) & m->slot_mask;
    }
    memset(&m->pairs[m->n_pairs], 0, sizeof(fti__pair));
    m->pairs[m->n_pairs].a = a;
    m->pairs[m->n_pairs].b = b;
    m->slot[k] = (uint32_t)m->n_pairs + 1;
    return m->n_pairs++;
}

static void fti__pair_add_word(fti__merger *m, fti__pair *p, uint32_t w) {
    if (p->nw && p->w[p->nw - 1] == w) return;
    if (p->nw == p->cw) {
        uint32_t cap = p->cw ? p->cw * 2 : 4;
        uint32_t *nw = (uint32_t *)fti_realloc(p->w, cap * sizeof(uint32_t));
        if (!nw) {
            m->oom = 1;
            return;
        }
        p->w = nw;
        p->cw = cap;
    }
    p->w[p->nw++] = w;
}

/* Adds delta to pair (a,b); positive deltas record word w and mark the pair touched. */
static void fti__pair_delta(fti__merger *m, uint32_t a, uint32_t b, int64_t delta, uint32_t w,
                            uint32_t stamp) {
    size_t i = fti__pair_get(m, a, b, delta > 0);
    fti__pair *p;
    if (i == (size_t)-1) return;
    p = &m->pairs[i];
    p->count += delta;
    if (delta > 0) {
        fti__pair_add_word(m, p, w);
        if (p->stamp != stamp) {
            p->stamp = stamp;
            if (m->n_touched == m->cap_touched) {
                size_t cap = m->cap_touched ? m->cap_touched * 2 : 1024;
                uint32_t *t = (uint32_t *)fti_realloc(m->touched, cap * sizeof(uint32_t));
                if (!t) {
                    m->oom = 1;
                    return;
                }
                m->touched = t;
                m->cap_touched = cap;
            }
            m->touched[m->n_touched++] = (uint32_t)i;
        }
    }
}

FTIDEF fti_result fti_bpe_trainer_train(fti_bpe_trainer *t, fti_tokenizer **out, fti_error *err) {
    fti__merger m;
    uint32_t *sym = NULL, *wlen = NULL, *mark = NULL;
    size_t *woff = NULL;
    uint64_t *wcnt = NULL;
    size_t n_words = 0, total = 0, i, k, n_merges_target, n_tokens;
    fti_tokenizer *tok = NULL;
    fti__wmap tokmap; /* token bytes -> id, for reused strings */
    fti_result r = FTI_ERR_NOMEM;
    uint32_t stamp = 0;
    size_t progress_every, next_progress;
    memset(&m, 0, sizeof m);
    memset(&tokmap, 0, sizeof tokmap);
    if (!t || !out) return fti_error_set(err, FTI_ERR_INVALID, "bpe train: bad arguments");
    *out = NULL;
    if (t->trained || t->failed)
        return fti_error_set(err, FTI_ERR_INVALID, "bpe train: trainer already used or failed");
    r = fti__trainer_flush(t);
    if (r != FTI_OK)
        return fti_error_set(err, r, "bpe train: counting failed: %s", fti_result_str(r));
    r = FTI_ERR_NOMEM;
    t->trained = 1;
    n_merges_target = t->o.vocab_size - 256 - t->n_special;
    /* words -> symbol arrays. Their order (the map's) can depend on the thread count, but no
     * result does: merges depend only on pair counts and the id tie-break. */
    n_words = t->words.n;
    woff = (size_t *)fti_malloc((n_words + 1) * sizeof(size_t));
    wlen = (uint32_t *)fti_malloc((n_words + 1) * sizeof(uint32_t));
    wcnt = (uint64_t *)fti_malloc((n_words + 1) * sizeof(uint64_t));
    mark = (uint32_t *)fti_calloc(n_words + 1, sizeof(uint32_t));
    sym = (uint32_t *)fti_malloc((t->words.blob_len + 1) * sizeof(uint32_t));
    tok = fti__tok_new();
    if (!woff || !wlen || !wcnt || !mark || !sym || !tok) goto done;
    for (k = 0, i = 0; k < t->words.cap; k++) {
        const fti__wentry *e = &t->words.e[k];
        size_t q;
        if (!e->used) continue;
        woff[i] = total;
        wlen[i] = e->len;
        wcnt[i] = e->count;
        for (q = 0; q < e->len; q++) sym[total + q] = t->words.blob[e->off + q];
        total += e->len;
        i++;
    }
    t->stats.n_unique = n_words;
    fti__wmap_free(&t->words);
    /* the vocabulary so far: 256 bytes */
    for (i = 0; i < 256; i++) {
        unsigned char b = (unsigned char)i;
        if (fti__tok_set(tok, (uint32_t)i, &b, 1, (uint32_t)i, FTI_TOKEN_NORMAL) != FTI_OK)
            goto done;
        if (fti__wmap_add(&tokmap, &b, 1, fti__tok_hash(&b, 1), i) == (size_t)-1) goto done;
    }
    n_tokens = 256;
    /* initial pair counts */
    m.slot = (uint32_t *)fti_calloc(1024, sizeof(uint32_t));
    if (!m.slot) goto done;
    m.slot_mask = 1023;
    for (i = 0; i < n_words; i++) {
        const uint32_t *s = sym + woff[i];
        for (k = 0; k + 1 < wlen[i]; k++) {
            size_t pi = fti__pair_get(&m, s[k], s[k + 1], 1);
            if (pi == (size_t)-1) goto done;
            m.pairs[pi].count += (int64_t)wcnt[i];
            fti__pair_add_word(&m, &m.pairs[pi], (uint32_t)i);
        }
    }
    for (i = 0; i < m.n_pairs; i++)
        if (m.pairs[i].count > 0) fti__pheap_push(&m, m.pairs[i].count, m.pairs[i].a, m.pairs[i].b);
    if (m.oom) goto done;
    progress_every = n_merges_target / 100 + 1;
    next_progress = progress_every;
    while (n_tokens - 256 < n_merges_target && m.n_heap) {
        fti__pheap_e top = fti__pheap_pop(&m);
        size_t pi = fti__pair_get(&m, top.a, top.b, 0);
        fti__pair *p;
        uint32_t a = top.a, b = top.b, c, *wl, nwl, wi;
        unsigned char cat[2 * FTI_TOK_MAX_TOKEN_BYTES];
        size_t la, lb, tk;
        if (pi == (size_t)-1) continue;
        p = &m.pairs[pi];
        if (p->count != top.count) {
            if (p->count > 0 && p->count < top.count) fti__pheap_push(&m, p->count, a, b);
            continue;
        }
        if ((uint64_t)top.count < t->o.min_frequency) break;
        la = tok->entries[a].len;
        lb = tok->entries[b].len;
        if (la + lb > FTI_TOK_MAX_TOKEN_BYTES) {
            p->count = 0; /* too long to become a token: never merge it */
            continue;
        }
        memcpy(cat, tok->blob + tok->entries[a].off, la);
        memcpy(cat + la, tok->blob + tok->entries[b].off, lb);
        {
            uint64_t h = fti__tok_hash(cat, la + lb);
            size_t before = tokmap.n;
            tk = fti__wmap_add(&tokmap, cat, la + lb, h, n_tokens);
            if (tk == (size_t)-1) goto done;
            if (tokmap.n != before) {
                c = (uint32_t)n_tokens;
                if (fti__tok_set(tok, c, cat, la + lb, c, FTI_TOKEN_NORMAL) != FTI_OK) goto done;
                n_tokens++;
            } else {
                /* the string exists: the count added above is undone, the id reused */
                tokmap.e[tk].count -= n_tokens;
                c = (uint32_t)tokmap.e[tk].count;
            }
        }
        t->stats.last_count = (uint64_t)top.count;
        /* rewrite the words on the pair's list */
        stamp++;
        m.n_touched = 0;
        wl = p->w;
        nwl = p->nw;
        p->w = NULL;
        p->nw = p->cw = 0;
        p->count = 0;
        for (wi = 0; wi < nwl; wi++) {
            uint32_t w = wl[wi], L, j = 0, x = 0;
            uint32_t *s;
            int64_t f;
            if (mark[w] == stamp) continue;
            mark[w] = stamp;
            s = sym + woff[w];
            L = wlen[w];
            f = (int64_t)wcnt[w];
            while (x < L) {
                if (x + 1 < L && s[x] == a && s[x + 1] == b) {
                    if (j > 0) {
                        fti__pair_delta(&m, s[j - 1], a, -f, w, stamp);
                        fti__pair_delta(&m, s[j - 1], c, f, w, stamp);
                    }
                    if (x + 2 < L) {
                        fti__pair_delta(&m, b, s[x + 2], -f, w, stamp);
                        fti__pair_delta(&m, c, s[x + 2], f, w, stamp);
                    }
                    s[j++] = c;
                    x += 2;
                } else {
                    s[j++] = s[x++];
                }
            }
            wlen[w] = j;
        }
        fti_free(wl);
        /* the merged pair itself may have been counted down by neighbours: it is gone */
        pi = fti__pair_get(&m, a, b, 0);
        if (pi != (size_t)-1) m.pairs[pi].count = 0;
        if (m.n_touched > 1) qsort(m.touched, m.n_touched, sizeof(uint32_t), fti__cmp_u32);
        for (i = 0; i < m.n_touched; i++) {
            fti__pair *q = &m.pairs[m.touched[i]];
            if (q->count > 0) fti__pheap_push(&m, q->count, q->a, q->b);
        }
        if (m.oom) goto done;
        if (t->o.progress && n_tokens - 256 >= next_progress) {
            t->o.progress(t->o.progress_user, n_tokens - 256, n_merges_target);
            next_progress += progress_every;
        }
    }
    t->stats.n_merges = n_tokens - 256;
    if (t->o.progress) t->o.progress(t->o.progress_user, n_tokens - 256, n_merges_target);
    for (i = 0; i < t->n_special; i++) {
        if (fti__tok_set(tok, (uint32_t)n_tokens, t->special[i], t->special_len[i], FTI__NO_RANK,
                         FTI_TOKEN_CONTROL) != FTI_OK)
            goto done;
        n_tokens++;
    }
    tok->pretok = t->o.pretok;
    r = fti__tok_finish(tok, "bpe train", err);
    if (r != FTI_OK) goto done;
    *out = tok;
    tok = NULL;
    r = FTI_OK;
done:
    if (r == FTI_ERR_NOMEM) fti_error_set(err, r, "bpe train: out of memory");
    for (i = 0; i < m.n_pairs; i++) fti_free(m.pairs[i].w);
    fti_free(m.pairs);
    fti_free(m.slot);
    fti_free(m.heap);
    fti_free(m.touched);
    fti__wmap_free(&tokmap);
    fti_free(sym);
    fti_free(woff);
    fti_free(wlen);
    fti_free(wcnt);
    fti_free(mark);
    fti_tokenizer_free(tok);
    return r;
}
/* ---- end src/03_tokenizer.c ---- */

#endif /* FTI_IMPLEMENTATION_DONE */
#endif /* FTI_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
This software is available under 2 licenses -- choose whichever you prefer.
------------------------------------------------------------------------------
ALTERNATIVE A - MIT License
Copyright (c) 2026 the fti authors
Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:
The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
ALTERNATIVE B - Public Domain (www.unlicense.org)
This is free and unencumbered software released into the public domain.
Anyone is free to copy, modify, publish, use, compile, sell, or distribute this
software, either in source code form or as a compiled binary, for any purpose,
commercial or non-commercial, and by any means.
In jurisdictions that recognize copyright laws, the author or authors of this
software dedicate any and all copyright interest in the software to the public
domain. We make this dedication in perpetuity for the benefit of the public at
large and to the detriment of our heirs and successors. We intend this
dedication to be an overt act of relinquishment in perpetuity of all present
and future rights to this software under copyright law.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN
ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION
WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
------------------------------------------------------------------------------
*/
