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
/* ---- begin src/09_monitor.h ---- */
/* === monitor: request log, metrics, drift === */
/*
 * What a deployed twin tells its operator:
 *
 *   metrics   fti_metrics, a small registry of counters, gauges and histograms (each with label
 *             sets) rendered in the Prometheus text format (version 0.0.4) for GET /metrics.
 *   log       fti_reqlog, a JSONL request log rotated by size (path, path.1, ... path.K): one line
 *             per request with time, endpoint, status, token counts, time to first token, latency,
 *             tokens/s, retrieval hits, prompt perplexity and the prompt's token-bucket counts, so
 *             drift can be recomputed offline (fti-monitor report). Each file starts with a
 *             "reference" line describing the reference distribution it is compared against.
 *   drift     fti_drift_ref holds the training data's token-frequency and length distributions
 *             (from the feature store). Tokens are grouped into FTI_DRIFT_BUCKETS buckets of equal
 *             reference mass (most frequent tokens first; unseen tokens fall in the last, rarest
 *             bucket), so a window of a few hundred prompt tokens gives a stable estimate. Against it
 *             a window of recent prompts gets the population stability index
 *             PSI = sum (a - e) ln(a / e) and the Jensen-Shannon divergence (bits, in [0, 1]) of the
 *             token buckets and of the prompt-length histogram, the share of tokens that fell back
 *             to raw bytes, and the prompt perplexity over the validation perplexity.
 *             Defaults from common practice: PSI 0.1 warn / 0.25 alert, JS 0.05 warn / 0.1 alert,
 *             byte-fallback share +0.05 / +0.15 over the reference, perplexity ratio 1.5 / 2.
 *             Prompt lengths differ from training documents by nature, so length drift warns but
 *             only alerts when asked to (length_alert).
 *   monitor   fti_monitor bundles the three for the server: one call per finished request.
 */
#ifndef FTI_MONITOR_H
#define FTI_MONITOR_H

/* #include "01_threads.h" (amalgamated) */

#ifdef __cplusplus
extern "C" {
#endif

/* --- metrics registry --------------------------------------------------------------------------- */

typedef enum fti_metric_type {
    FTI_METRIC_COUNTER = 1,
    FTI_METRIC_GAUGE,
    FTI_METRIC_HISTOGRAM
} fti_metric_type;

#define FTI_METRICS_MAX 64          /* metrics per registry */
#define FTI_METRICS_MAX_SERIES 256  /* label sets per metric */
#define FTI_METRICS_MAX_BUCKETS 24

typedef struct fti_metrics fti_metrics;

/* Creates an empty registry. Thread safety: every call below is safe from any thread. */
FTIDEF fti_result fti_metrics_create(fti_metrics **out);
FTIDEF void fti_metrics_free(fti_metrics *m);
/* Defines a metric; returns its id (>= 0) or a negative fti_result. name must match
 * [a-zA-Z_:][a-zA-Z0-9_:]*; histograms take ascending upper bounds (+Inf is implied).
 * Defining an existing name returns its id. */
FTIDEF int fti_metrics_define(fti_metrics *m, fti_metric_type type, const char *name,
                              const char *help, const double *bounds, size_t n_bounds);
/* labels: "" or a Prometheus label list without braces, e.g. `status="200",endpoint="/health"`
 * (build values with fti_metrics_label_escape). Series beyond FTI_METRICS_MAX_SERIES are dropped. */
FTIDEF void fti_metrics_add(fti_metrics *m, int id, const char *labels, double v);
FTIDEF void fti_metrics_set(fti_metrics *m, int id, const char *labels, double v);
FTIDEF void fti_metrics_observe(fti_metrics *m, int id, const char *labels, double v);
/* Current value (counter/gauge) or observation count (histogram); 0 when absent. */
FTIDEF double fti_metrics_get(fti_metrics *m, int id, const char *labels);
/* Appends the Prometheus text exposition of every metric to out. */
FTIDEF void fti_metrics_render(fti_metrics *m, fti_buf *out);
/* Appends s[0..n) escaped for a label value (\\, \", \n). */
FTIDEF void fti_metrics_label_escape(fti_buf *out, const char *s, size_t n);

/* --- request log ------------------------------------------------------------------------------- */

typedef struct fti_reqlog fti_reqlog;
typedef struct fti_reqlog_opts {
    uint64_t max_bytes; /* rotate when the file would exceed this, 0 = 16 MiB */
    int keep;           /* rotated files kept (path.1 .. path.keep), 0 = 5 */
} fti_reqlog_opts;

/* Opens (appends to) the log at path, creating its directory. header (may be NULL) is a line
 * written at the start of every new file (the reference record). The log is append-only: a crash
 * loses at most the last line, which readers skip when incomplete. Thread safety: any thread. */
FTIDEF fti_result fti_reqlog_open(const char *path, const fti_reqlog_opts *opts,
                                  const char *header, fti_reqlog **out, fti_error *err);
/* Appends one line (a newline is added), rotating first when needed. */
FTIDEF fti_result fti_reqlog_write(fti_reqlog *log, const char *line, size_t len);
/* Replaces the header line used for files created from now on. */
FTIDEF fti_result fti_reqlog_set_header(fti_reqlog *log, const char *header);
/* fsyncs the current file. */
FTIDEF fti_result fti_reqlog_flush(fti_reqlog *log);
FTIDEF void fti_reqlog_close(fti_reqlog *log);

/* --- drift ------------------------------------------------------------------------------------- */

#define FTI_DRIFT_BUCKETS 16
#define FTI_DRIFT_LEN_BINS 16 /* prompt tokens: 0, 1, 2-3, 4-7, ..., >= 2^14 */

/* Bin of a prompt length: 0 for 0 tokens, else 1 + floor(log2 n), capped. */
FTIDEF int fti_drift_len_bin(size_t n_tokens);

/* The reference distribution. */
typedef struct fti_drift_ref {
    size_t vocab;
    unsigned char *bucket_of;                 /* (V) token id -> bucket */
    double tok_share[FTI_DRIFT_BUCKETS];      /* reference share of tokens per bucket */
    double len_share[FTI_DRIFT_LEN_BINS];     /* reference share of prompts per length bin */
    double byte_share;                        /* reference share of byte-fallback tokens */
    double ppl;                               /* validation perplexity, <= 0 unknown */
} fti_drift_ref;

/* Builds a reference from token counts (V entries) and a length histogram (FTI_DRIFT_LEN_BINS
 * counts of documents/prompts per fti_drift_len_bin; NULL = no length reference). byte_share and
 * val_ppl may be 0 (unknown). Thread safety: any thread; the result is read-only. */
FTIDEF fti_result fti_drift_ref_build(const uint64_t *token_counts, size_t vocab,
                                      const uint64_t *len_hist, double byte_share, double val_ppl,
                                      fti_drift_ref **out, fti_error *err);
/* A reference from the shares alone (as read back from a log's reference line): bucket_of is NULL,
 * so it can score bucket counts but not token ids. */
FTIDEF fti_result fti_drift_ref_from_shares(const double *tok_share, const double *len_share,
                                            double byte_share, double val_ppl,
                                            fti_drift_ref **out);
FTIDEF void fti_drift_ref_free(fti_drift_ref *ref);
/* Adds the bucket of each id to counts[FTI_DRIFT_BUCKETS] (ids outside the vocab count as rarest). */
FTIDEF void fti_drift_bucketize(const fti_drift_ref *ref, const int32_t *ids, size_t n,
                                uint32_t *counts);
/* Appends the reference as one JSON object line {"type":"reference",...}. */
FTIDEF void fti_drift_ref_json(const fti_drift_ref *ref, fti_buf *out);

/* PSI of actual vs expected shares over n bins, with eps smoothing of empty bins (eps 0 = 1e-4). */
FTIDEF double fti_psi(const double *expected, const double *actual, size_t n, double eps);
/* Jensen-Shannon divergence in bits of two distributions (each normalised here), in [0, 1]. */
FTIDEF double fti_js_divergence(const double *p, const double *q, size_t n);

/* A window of prompts: sums that fti_drift_compute compares with the reference. */
typedef struct fti_drift_window {
    uint64_t tok[FTI_DRIFT_BUCKETS];
    uint64_t len[FTI_DRIFT_LEN_BINS];
    uint64_t n_prompts;
    uint64_t n_tokens;
    uint64_t n_byte_fallback;
    double nll_sum;       /* sum over prompts of nll_mean * n_tokens */
    uint64_t nll_tokens;  /* tokens with a known nll */
} fti_drift_window;
/* Adds one prompt (bucket_counts may be NULL; nll_mean < 0 = unknown). */
FTIDEF void fti_drift_window_add(fti_drift_window *w, const uint32_t *bucket_counts,
                                 size_t n_tokens, size_t n_byte_fallback, double nll_mean);

typedef struct fti_drift_thresholds {
    double psi_warn, psi_alert;     /* 0 = 0.1, 0.25 */
    double js_warn, js_alert;       /* 0 = 0.05, 0.1 */
    double byte_warn, byte_alert;   /* excess share over the reference, 0 = 0.05, 0.15 */
    double ppl_warn, ppl_alert;     /* ratio, 0 = 1.5, 2.0 */
    int length_alert;               /* 1: length drift may alert (default: warn only) */
    uint64_t min_tokens;            /* below this the window is not judged, 0 = 200 */
} fti_drift_thresholds;

typedef enum fti_drift_level {
    FTI_DRIFT_OK = 0,
    FTI_DRIFT_WARN = 1,
    FTI_DRIFT_ALERT = 2
} fti_drift_level;

typedef struct fti_drift_stats {
    double psi_tokens, js_tokens;
    double psi_length, js_length;
    double byte_share;
    double ppl, ppl_ratio;       /* < 0 when unknown */
    uint64_t n_prompts, n_tokens;
    fti_drift_level level;
    char reason[160];            /* which measures crossed which thresholds */
} fti_drift_stats;

FTIDEF void fti_drift_compute(const fti_drift_ref *ref, const fti_drift_window *w,
                              const fti_drift_thresholds *thr, fti_drift_stats *st);

/* --- request records --------------------------------------------------------------------------- */

typedef struct fti_request_record {
    double time;               /* wall seconds at the end of the request */
    const char *endpoint;
    int status;
    const char *model;
    int stream;
    int prompt_tokens;
    int completion_tokens;
    double ttft_ms;            /* < 0 unknown */
    double latency_ms;
    double tokens_per_s;
    int retrieval_hits;
    double prompt_ppl;         /* < 0 unknown */
    int byte_fallback;
    int has_buckets;
    uint32_t tok_buckets[FTI_DRIFT_BUCKETS];
    const char *finish_reason; /* may be NULL */
} fti_request_record;

/* Appends rec as one JSON object (no newline). */
FTIDEF void fti_request_record_json(const fti_request_record *rec, fti_buf *out);
/* Parses one log line. Returns FTI_OK for a request line (strings are copied into strbuf, which
 * must hold len bytes), FTI_ERR_NOT_FOUND for another kind of line (e.g. the reference), else an
 * error. */
FTIDEF fti_result fti_request_record_parse(const char *line, size_t len, fti_request_record *rec,
                                           char *strbuf, size_t strbuf_len);

/* p-th percentile (0..100) of x[0..n) by linear interpolation; sorts x in place. 0 when n == 0. */
FTIDEF double fti_percentile(double *x, size_t n, double p);

/* --- the monitor bundle ------------------------------------------------------------------------ */

typedef struct fti_monitor fti_monitor;
typedef struct fti_monitor_opts {
    const char *log_path;          /* NULL = no request log */
    fti_reqlog_opts log;
    const fti_drift_ref *ref;      /* NULL = no drift; copied */
    fti_drift_thresholds thresholds;
    size_t window_prompts;         /* sliding drift window, 0 = 200 prompts */
    fti_log_fn log_fn;             /* warnings when the drift level changes */
    void *log_user;
} fti_monitor_opts;

FTIDEF fti_result fti_monitor_create(const fti_monitor_opts *opts, fti_monitor **out,
                                     fti_error *err);
FTIDEF void fti_monitor_free(fti_monitor *mon);
/* The registry (for extra metrics). */
FTIDEF fti_metrics *fti_monitor_metrics(fti_monitor *mon);
/* Records a finished request: metrics, log line, drift window (if the record has buckets).
 * Thread safety: any thread. */
FTIDEF void fti_monitor_record(fti_monitor *mon, const fti_request_record *rec);
/* Counts a request that is not a completion (health, metrics, errors): metrics only, no log line. */
FTIDEF void fti_monitor_count(fti_monitor *mon, const char *endpoint, int status);
/* Counts a 503 (reason "conn_cap" or "queue"). */
FTIDEF void fti_monitor_reject(fti_monitor *mon, const char *reason);
/* Server load gauges, and the model id shown as fti_model_info{model="..."} 1. */
FTIDEF void fti_monitor_set_load(fti_monitor *mon, int queued, int active, int conns);
FTIDEF void fti_monitor_set_model(fti_monitor *mon, const char *model_id);
/* Adds a completion-token count to the throughput meter (called as tokens are produced). */
FTIDEF void fti_monitor_tokens(fti_monitor *mon, uint64_t n_tokens);
/* The current drift statistics of the sliding window. */
FTIDEF void fti_monitor_drift(fti_monitor *mon, fti_drift_stats *st);
/* The reference (NULL if none): callers bucketize prompt ids with it. */
FTIDEF const fti_drift_ref *fti_monitor_ref(const fti_monitor *mon);
/* Appends /metrics text (refreshes the drift and throughput gauges first). */
FTIDEF void fti_monitor_render(fti_monitor *mon, fti_buf *out);
FTIDEF fti_result fti_monitor_flush(fti_monitor *mon);

#ifdef __cplusplus
}
#endif
#endif /* FTI_MONITOR_H */
/* ---- end src/09_monitor.h ---- */
/* ---- begin src/10_server.h ---- */
/* === server: HTTP/1.1, the OpenAI-compatible API, continuous batching === */
/*
 * The server part turns a generator into a network service. It has four layers, each usable and
 * testable on its own:
 *
 *   parser     fti_http_parse_head / fti_http_chunked_feed / fti_http_parse_request: pure functions
 *              over bytes. Hostile input is the normal case: every limit is named and checked before
 *              anything grows, and every construct used for request smuggling (Content-Length next
 *              to Transfer-Encoding, duplicate or odd Content-Length, bare LF or CR, obs-fold, bad
 *              chunk sizes) is an error that closes the connection, so a byte stream is never read
 *              as two requests in a way a front proxy would not.
 *   api        fti_api_parse_completion: validates an OpenAI /v1/completions or /v1/chat/completions
 *              body (types and ranges, 400 with an OpenAI-style error body otherwise) and renders chat
 *              messages into one prompt; writers for the JSON responses and Server-Sent Events.
 *   generator  fti_gen: the small interface the server drives. A sequence is started from a prompt
 *              (tokenize + prefill), then the scheduler steps a BATCH of active sequences one token
 *              each: weights are read once per step for all of them (continuous batching: sequences
 *              join and leave between steps). fti_gen_echo is a deterministic stand-in used by the
 *              tests and the load benchmark; the inference part provides the real one.
 *   server     fti_server: POSIX sockets, one poll() loop for all connections plus one scheduler
 *              thread. Keep-alive, a deadline for the whole header (not reset per byte), idle and
 *              body timeouts, a connection cap and a bounded queue (503), EMFILE survival, graceful
 *              stop (stop accepting, finish in-flight, flush logs), hot swap of the generator without
 *              dropping in-flight requests. Endpoints: POST /v1/completions, POST
 *              /v1/chat/completions, GET /v1/models, /health, /metrics (Prometheus text) and a
 *              dashboard at / (inline HTML, CSS, JS).
 *
 * The socket server needs POSIX and threads: under FTI_NO_THREADS fti_server_create returns
 * FTI_ERR_UNSUPPORTED (the parser and the API layer still work). FTI_NO_SERVER removes the part.
 */
#ifndef FTI_SERVER_H
#define FTI_SERVER_H

/* #include "09_monitor.h" (amalgamated) */

#ifndef FTI_NO_SERVER

#ifdef __cplusplus
extern "C" {
#endif

/* --- HTTP/1.1 request parsing ------------------------------------------------------------------ */

/* Parser results: > 0 is done (bytes consumed), 0 needs more bytes, < 0 is -status: the HTTP status
 * to answer with before closing (-400, -413, -414, -431, -501, -505). */
#define FTI_HTTP_INCOMPLETE 0

/* Limits (zero fields mean the default in brackets). */
typedef struct fti_http_limits {
    size_t max_request_line; /* bytes of the request line without CRLF [8192] -> 414 */
    size_t max_head;         /* bytes of request line + fields + blank line [32768] -> 431 */
    size_t max_fields;       /* header fields [100] -> 431 */
    size_t max_body;         /* body bytes, after chunked decoding [1 MiB] -> 413 */
} fti_http_limits;

#define FTI_HTTP_MAX_FIELDS_CAP 256 /* hard cap of the field table */

typedef struct fti_http_span {
    size_t off; /* into the buffer passed to the parser */
    size_t len;
} fti_http_span;

typedef struct fti_http_field {
    fti_http_span name;
    fti_http_span value; /* leading and trailing whitespace removed */
} fti_http_field;

/* A parsed request head. Spans point into the caller's buffer. */
typedef struct fti_http_head {
    fti_http_span method;
    fti_http_span target;
    int version_minor;       /* HTTP/1.<minor>: 0 or 1 */
    size_t n_fields;
    fti_http_field fields[FTI_HTTP_MAX_FIELDS_CAP];
    size_t head_len;         /* bytes of the head including the blank line */
    int chunked;             /* Transfer-Encoding: chunked */
    uint64_t content_length; /* when !chunked (0 if absent) */
    int keep_alive;          /* per version and Connection */
    int expect_continue;     /* Expect: 100-continue */
    const char *error;       /* static text naming the problem when the parse failed */
} fti_http_head;

/* Parses the head of one request from buf[0..len). Returns head_len (> 0) when the head is complete
 * and valid, FTI_HTTP_INCOMPLETE when more bytes are needed (and no limit has been crossed yet),
 * or -status. Leading CRLFs before the request line are skipped (RFC 9112 2.2).
 * Thread safety: any thread. */
FTIDEF long fti_http_parse_head(const unsigned char *buf, size_t len, const fti_http_limits *lim,
                                fti_http_head *head);

/* Resumable chunked-body decoder. Zero-initialise, then call fti_http_chunked_feed with the bytes
 * after the head (the same growing buffer each time; it remembers how far it got). Decoded data is
 * appended to `out`. Returns the number of bytes of buf consumed by the body (> 0, including the last
 * chunk and trailers) when complete, FTI_HTTP_INCOMPLETE when more is needed, -400 on a bad chunk size,
 * missing CRLF or bad trailer, -413 when the decoded body would exceed max_body, -431 when trailers
 * are too large. Thread safety: one thread per object. */
typedef struct fti_http_chunked {
    size_t pos;          /* next byte of buf to look at */
    int state;           /* internal */
    uint64_t remaining;  /* bytes left in the current chunk */
    size_t n_trailer;    /* trailer bytes/fields seen */
    size_t n_trailer_fields;
    size_t line_len;
} fti_http_chunked;
FTIDEF long fti_http_chunked_feed(fti_http_chunked *c, const unsigned char *buf, size_t len,
                                  const fti_http_limits *lim, fti_buf *out);

/* One-shot parse of a whole request (head + body) from buf[0..len), as used by tests and the fuzz
 * entry. On success returns the bytes consumed (> 0) and the body in *body (a span into buf, or for
 * chunked bodies the decoded bytes in body_buf, which the caller frees with fti_buf_free).
 * Otherwise as fti_http_parse_head. Thread safety: any thread. */
FTIDEF long fti_http_parse_request(const unsigned char *buf, size_t len, const fti_http_limits *lim,
                                   fti_http_head *head, fti_buf *body_buf, const char **body,
                                   size_t *body_len);

/* Looks a field up by name (case-insensitive); returns the number of occurrences and the first
 * value in *value. */
FTIDEF size_t fti_http_head_field(const fti_http_head *head, const unsigned char *buf,
                                  const char *name, fti_http_span *value);

/* Reason phrase for a status code ("Not Found"); "Unknown" for codes it does not know. */
FTIDEF const char *fti_http_reason(int status);

/* --- the OpenAI API layer ---------------------------------------------------------------------- */

#define FTI_API_MAX_STOP 4
#define FTI_API_MAX_STOP_LEN 64

typedef enum fti_api_kind {
    FTI_API_COMPLETION = 1,
    FTI_API_CHAT = 2
} fti_api_kind;

/* A validated completion request. Owns its strings (fti_api_request_free). */
typedef struct fti_api_request {
    fti_api_kind kind;
    char *model;        /* as sent, or NULL */
    char *prompt;       /* the prompt text (chat: rendered from the messages) */
    size_t prompt_len;
    char *chat_title;   /* chat: the last user message (also inside prompt) */
    int max_tokens;     /* >= 1 */
    float temperature;  /* [0, 2] */
    float top_p;        /* (0, 1] */
    int top_k;          /* >= 0, 0 = off (extension) */
    uint64_t seed;
    int has_seed;
    int stream;
    int include_usage;  /* stream_options.include_usage */
    size_t n_stop;
    char stop[FTI_API_MAX_STOP][FTI_API_MAX_STOP_LEN + 1];
    int use_retrieval;  /* extension "fti_retrieval": default 1 */
} fti_api_request;

/* Validates body[0..len) for the given endpoint kind. n_ctx (> 0) bounds max_tokens.
 * On failure returns FTI_ERR_FORMAT/FTI_ERR_INVALID/FTI_ERR_LIMIT with err->msg holding the text for
 * the error body and *param (if not NULL) set to the offending parameter name (static, or NULL).
 * Thread safety: any thread. */
FTIDEF fti_result fti_api_parse_completion(fti_api_kind kind, const char *body, size_t len,
                                           int n_ctx, fti_api_request *req, const char **param,
                                           fti_error *err);
FTIDEF void fti_api_request_free(fti_api_request *req);

/* The OpenAI error body {"error":{"message","type","param","code"}} appended to out. */
FTIDEF void fti_api_write_error(fti_buf *out, const char *message, const char *type,
                                const char *param, const char *code);

/* What a finished (or streaming) completion reports. */
typedef struct fti_api_result {
    const char *id;          /* "cmpl-..." / "chatcmpl-..." */
    const char *model;
    int64_t created;         /* unix seconds */
    const char *text;        /* full text (response) or this piece (stream chunk) */
    size_t text_len;
    const char *finish_reason; /* "stop", "length" or NULL (stream: not finished) */
    int prompt_tokens;
    int completion_tokens;
    const char *chunks_json; /* retrieval chunks used, a JSON array text, or NULL */
} fti_api_result;

/* The whole JSON response for a non-streaming request. */
FTIDEF void fti_api_write_response(fti_buf *out, fti_api_kind kind, const fti_api_result *r);
/* One SSE event "data: {...}\n\n". first (chat: carries role), and usage-only chunks are flags. */
#define FTI_API_CHUNK_FIRST 1
#define FTI_API_CHUNK_USAGE 2
FTIDEF void fti_api_write_chunk(fti_buf *out, fti_api_kind kind, const fti_api_result *r,
                                int flags);
/* "data: [DONE]\n\n". */
FTIDEF void fti_api_write_done(fti_buf *out);

/* --- the generator interface ------------------------------------------------------------------- */

/* Parameters of one sequence. */
typedef struct fti_gen_params {
    int max_tokens;
    float temperature;
    float top_p;
    int top_k;
    uint64_t seed;
    int use_retrieval;
} fti_gen_params;

/* What starting a sequence reports about its prompt (valid until seq_end). */
typedef struct fti_gen_prompt_info {
    const int32_t *ids;        /* prompt token ids (for drift) or NULL */
    size_t n_tokens;
    size_t n_byte_fallback;    /* prompt tokens that are raw bytes */
    double nll_mean;           /* mean negative log-likelihood per prompt token (nats); < 0 = unknown */
    const char *chunks_json;   /* retrieval chunks used (JSON array text) or NULL */
    int n_chunks;
} fti_gen_prompt_info;

/* One decoded token of one sequence. text points into generator storage valid until the next call
 * of step for that sequence; it may end inside a UTF-8 character (the server holds such bytes back). */
typedef struct fti_gen_token {
    int32_t id;
    int is_end;         /* end of text: the sequence is finished ("stop") */
    const char *text;
    size_t text_len;
} fti_gen_token;

/* The interface. All calls come from the scheduler thread except model_id and n_ctx (any thread).
 *   seq_start  tokenizes and prefills the prompt; FTI_ERR_LIMIT when prompt + max_tokens exceed the
 *              context (err names the numbers; answered with 400).
 *   step       advances every sequence in seqs[0..n) by one token: out[i] for seqs[i]. A step's cost
 *              should grow sublinearly with n (weights are read once for the batch).
 *   seq_end    releases a sequence (finished, failed or cancelled).
 *   release    called once when the server no longer uses this generator (after a swap and when its
 *              last sequence ended, or at server free). May be NULL. */
typedef struct fti_gen {
    void *user;
    const char *(*model_id)(void *user);
    int (*n_ctx)(void *user);
    fti_result (*seq_start)(void *user, const char *prompt, size_t prompt_len,
                            const fti_gen_params *params, void **seq, fti_gen_prompt_info *info,
                            fti_error *err);
    fti_result (*step)(void *user, void **seqs, size_t n, fti_gen_token *out, fti_error *err);
    void (*seq_end)(void *user, void *seq);
    void (*release)(void *user);
} fti_gen;

/* A deterministic stand-in generator: the prompt is tokenized one byte per token; sequence s emits
 * the words of a fixed text, rotated by a hash of the prompt and seed, one word per token, ending
 * after `end_after` tokens (0 = never, so max_tokens decides). Each step sleeps step_us (a cost that
 * is independent of the batch size, like reading the weights once). model_id is `id`. */
typedef struct fti_gen_echo_opts {
    const char *id;    /* NULL = "fti-echo" */
    int n_ctx;         /* 0 = 2048 */
    unsigned step_us;  /* simulated cost per step */
    int end_after;
    int fail_every;    /* > 0: every n-th seq_start fails (tests) */
} fti_gen_echo_opts;
/* Fills *gen with a new echo generator (gen->release frees it). */
FTIDEF fti_result fti_gen_echo_create(const fti_gen_echo_opts *opts, fti_gen *gen);

/* --- the server -------------------------------------------------------------------------------- */

typedef struct fti_server fti_server;

typedef struct fti_server_opts {
    const char *host;           /* NULL = "127.0.0.1" */
    int port;                   /* 0 = ephemeral (see fti_server_port) */
    int max_conns;              /* 0 = 256; beyond -> 503 and close */
    int max_queue;              /* waiting requests, 0 = 64; beyond -> 503 */
    int max_batch;              /* active sequences per step, 0 = 16 */
    int header_timeout_ms;      /* whole head must arrive within, 0 = 10000 */
    int idle_timeout_ms;        /* keep-alive idle, 0 = 15000 */
    int body_timeout_ms;        /* whole body must arrive within, 0 = 30000 */
    size_t max_output_bytes;    /* unsent bytes per connection before it is dropped, 0 = 8 MiB */
    fti_http_limits limits;
    fti_monitor *monitor;       /* metrics, request log, drift (optional, not owned) */
    fti_log_fn log;             /* optional */
    void *log_user;
    int no_dashboard;           /* 1: GET / is 404 */
} fti_server_opts;

/* Creates a server: binds and listens (so the port is known when this returns). gen is copied; the
 * server owns it from then on (calls gen.release at free) - also on failure. Errors name host:port.
 * Thread safety: create/free from one thread. */
FTIDEF fti_result fti_server_create(const fti_server_opts *opts, const fti_gen *gen,
                                    fti_server **out, fti_error *err);
/* The bound port. */
FTIDEF int fti_server_port(const fti_server *srv);
/* Serves until fti_server_stop; then stops accepting, finishes in-flight requests (up to
 * drain_ms = 30 s), closes every connection and returns FTI_OK. Thread safety: one thread. */
FTIDEF fti_result fti_server_run(fti_server *srv, fti_error *err);
/* Asks run to return. Async-signal-safe (one write() to a pipe); any thread. */
FTIDEF void fti_server_stop(fti_server *srv);
/* Switches to a new generator: new requests use it, in-flight ones finish on the old one, which
 * is released when its last sequence ends. The server owns gen afterwards. Any thread. */
FTIDEF fti_result fti_server_set_generator(fti_server *srv, const fti_gen *gen);
FTIDEF void fti_server_free(fti_server *srv);

/* Counters for tests and the benchmark (a snapshot). */
typedef struct fti_server_stats {
    uint64_t requests;        /* responses sent */
    uint64_t rejected;        /* 503s for the connection cap or the queue */
    uint64_t tokens;          /* completion tokens generated */
    uint64_t steps;           /* generator steps */
    uint64_t batch_tokens;    /* sum of batch sizes over steps */
    uint64_t accept_errors;   /* EMFILE and friends survived */
    int conns;                /* open connections */
    int active;               /* active sequences */
    int queued;
} fti_server_stats;
FTIDEF void fti_server_get_stats(fti_server *srv, fti_server_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* FTI_NO_SERVER */
#endif /* FTI_SERVER_H */
/* ---- end src/10_server.h ---- */

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
/* ---- begin src/09_monitor.c ---- */
/* === monitor: implementation === */
/* #include "09_monitor.h" (amalgamated) */

/* #include <errno.h> (already included) */
/* #include <fcntl.h> (already included) */
/* #include <math.h> (already included) */
/* #include <stdio.h> (already included) */
/* #include <stdlib.h> (already included) */
/* #include <string.h> (already included) */
/* #include <sys/stat.h> (already included) */
/* #include <unistd.h> (already included) */

/* === monitor: metrics registry === */

typedef struct fti__series {
    char *labels;
    double value;          /* counter/gauge value; histogram sum */
    uint64_t count;        /* histogram observations */
    uint64_t buckets[FTI_METRICS_MAX_BUCKETS];
} fti__series;

typedef struct fti__metric {
    char name[96];
    char help[192];
    fti_metric_type type;
    double bounds[FTI_METRICS_MAX_BUCKETS];
    size_t n_bounds;
    fti__series *series;
    size_t n_series, cap_series;
} fti__metric;

struct fti_metrics {
    fti_mutex mu;
    fti__metric m[FTI_METRICS_MAX];
    int n;
};

FTIDEF fti_result fti_metrics_create(fti_metrics **out) {
    fti_metrics *m;
    if (!out) return FTI_ERR_INVALID;
    *out = NULL;
    m = (fti_metrics *)fti_calloc(1, sizeof *m);
    if (!m) return FTI_ERR_NOMEM;
    if (fti_mutex_init(&m->mu) != FTI_OK) {
        fti_free(m);
        return FTI_ERR_NOMEM;
    }
    *out = m;
    return FTI_OK;
}

FTIDEF void fti_metrics_free(fti_metrics *m) {
    int i;
    size_t k;
    if (!m) return;
    for (i = 0; i < m->n; i++) {
        for (k = 0; k < m->m[i].n_series; k++) fti_free(m->m[i].series[k].labels);
        fti_free(m->m[i].series);
    }
    fti_mutex_destroy(&m->mu);
    fti_free(m);
}

static int fti__metric_name_ok(const char *s) {
    size_t i;
    if (!s || !*s || strlen(s) >= 96) return 0;
    for (i = 0; s[i]; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                 (i > 0 && c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    return 1;
}

FTIDEF int fti_metrics_define(fti_metrics *m, fti_metric_type type, const char *name,
                              const char *help, const double *bounds, size_t n_bounds) {
    int i, id;
    size_t k;
    if (!m || !fti__metric_name_ok(name) || type < FTI_METRIC_COUNTER ||
        type > FTI_METRIC_HISTOGRAM || n_bounds > FTI_METRICS_MAX_BUCKETS ||
        (n_bounds && !bounds))
        return FTI_ERR_INVALID;
    for (k = 1; k < n_bounds; k++)
        if (!(bounds[k] > bounds[k - 1])) return FTI_ERR_INVALID;
    fti_mutex_lock(&m->mu);
    for (i = 0; i < m->n; i++)
        if (strcmp(m->m[i].name, name) == 0) {
            fti_mutex_unlock(&m->mu);
            return i;
        }
    if (m->n >= FTI_METRICS_MAX) {
        fti_mutex_unlock(&m->mu);
        return FTI_ERR_LIMIT;
    }
    id = m->n++;
    snprintf(m->m[id].name, sizeof m->m[id].name, "%s", name);
    snprintf(m->m[id].help, sizeof m->m[id].help, "%s", help ? help : "");
    m->m[id].type = type;
    m->m[id].n_bounds = type == FTI_METRIC_HISTOGRAM ? n_bounds : 0;
    if (type == FTI_METRIC_HISTOGRAM && n_bounds)
        memcpy(m->m[id].bounds, bounds, n_bounds * sizeof(double));
    fti_mutex_unlock(&m->mu);
    return id;
}

/* The series for labels, created on first use (mu held). NULL when full or out of memory. */
static fti__series *fti__metric_series(fti__metric *mt, const char *labels) {
    size_t k;
    if (!labels) labels = "";
    for (k = 0; k < mt->n_series; k++)
        if (strcmp(mt->series[k].labels, labels) == 0) return &mt->series[k];
    if (mt->n_series >= FTI_METRICS_MAX_SERIES) return NULL;
    if (mt->n_series == mt->cap_series) {
        size_t nc = mt->cap_series ? mt->cap_series * 2 : 4;
        fti__series *ns = (fti__series *)fti_realloc(mt->series, nc * sizeof *ns);
        if (!ns) return NULL;
        mt->series = ns;
        mt->cap_series = nc;
    }
    memset(&mt->series[mt->n_series], 0, sizeof(fti__series));
    mt->series[mt->n_series].labels = fti_strdup(labels);
    if (!mt->series[mt->n_series].labels) return NULL;
    return &mt->series[mt->n_series++];
}

static void fti__metrics_update(fti_metrics *m, int id, const char *labels, double v, int op) {
    fti__series *se;
    if (!m || id < 0) return;
    fti_mutex_lock(&m->mu);
    if (id < m->n && (se = fti__metric_series(&m->m[id], labels)) != NULL) {
        fti__metric *mt = &m->m[id];
        if (op == 0) se->value += v;
        else if (op == 1) se->value = v;
        else if (mt->type == FTI_METRIC_HISTOGRAM) {
            size_t k;
            for (k = 0; k < mt->n_bounds; k++)
                if (v <= mt->bounds[k]) se->buckets[k]++;
            se->count++;
            se->value += v;
        }
    }
    fti_mutex_unlock(&m->mu);
}

FTIDEF void fti_metrics_add(fti_metrics *m, int id, const char *labels, double v) {
    fti__metrics_update(m, id, labels, v, 0);
}
FTIDEF void fti_metrics_set(fti_metrics *m, int id, const char *labels, double v) {
    fti__metrics_update(m, id, labels, v, 1);
}
FTIDEF void fti_metrics_observe(fti_metrics *m, int id, const char *labels, double v) {
    fti__metrics_update(m, id, labels, v, 2);
}

FTIDEF double fti_metrics_get(fti_metrics *m, int id, const char *labels) {
    double v = 0;
    size_t k;
    if (!m || id < 0) return 0;
    fti_mutex_lock(&m->mu);
    if (id < m->n) {
        fti__metric *mt = &m->m[id];
        for (k = 0; k < mt->n_series; k++)
            if (strcmp(mt->series[k].labels, labels ? labels : "") == 0)
                v = mt->type == FTI_METRIC_HISTOGRAM ? (double)mt->series[k].count
                                                     : mt->series[k].value;
    }
    fti_mutex_unlock(&m->mu);
    return v;
}

static void fti__prom_num(fti_buf *out, double v) {
    if (v != v) fti_buf_puts(out, "NaN");
    else if (v > 1e308) fti_buf_puts(out, "+Inf");
    else if (v < -1e308) fti_buf_puts(out, "-Inf");
    else fti_buf_printf(out, "%.10g", v);
}

FTIDEF void fti_metrics_label_escape(fti_buf *out, const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        if (s[i] == '\\') fti_buf_puts(out, "\\\\");
        else if (s[i] == '"') fti_buf_puts(out, "\\\"");
        else if (s[i] == '\n') fti_buf_puts(out, "\\n");
        else fti_buf_putc(out, s[i]);
    }
}

FTIDEF void fti_metrics_render(fti_metrics *m, fti_buf *out) {
    int i;
    size_t k, b;
    if (!m || !out) return;
    fti_mutex_lock(&m->mu);
    for (i = 0; i < m->n; i++) {
        fti__metric *mt = &m->m[i];
        static const char *const tn[] = {"", "counter", "gauge", "histogram"};
        fti_buf_printf(out, "# HELP %s ", mt->name);
        for (k = 0; mt->help[k]; k++) {
            if (mt->help[k] == '\\') fti_buf_puts(out, "\\\\");
            else if (mt->help[k] == '\n') fti_buf_puts(out, "\\n");
            else fti_buf_putc(out, mt->help[k]);
        }
        fti_buf_printf(out, "\n# TYPE %s %s\n", mt->name, tn[mt->type]);
        for (k = 0; k < mt->n_series; k++) {
            fti__series *se = &mt->series[k];
            const char *sep = se->labels[0] ? "," : "";
            if (mt->type != FTI_METRIC_HISTOGRAM) {
                fti_buf_puts(out, mt->name);
                if (se->labels[0]) fti_buf_printf(out, "{%s}", se->labels);
                fti_buf_putc(out, ' ');
                fti__prom_num(out, se->value);
                fti_buf_putc(out, '\n');
                continue;
            }
            for (b = 0; b < mt->n_bounds; b++) {
                fti_buf_printf(out, "%s_bucket{%s%sle=\"", mt->name, se->labels, sep);
                fti__prom_num(out, mt->bounds[b]);
                fti_buf_printf(out, "\"} %llu\n", (unsigned long long)se->buckets[b]);
            }
            fti_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", mt->name, se->labels, sep,
                           (unsigned long long)se->count);
            fti_buf_printf(out, "%s_sum", mt->name);
            if (se->labels[0]) fti_buf_printf(out, "{%s}", se->labels);
            fti_buf_putc(out, ' ');
            fti__prom_num(out, se->value);
            fti_buf_printf(out, "\n%s_count", mt->name);
            if (se->labels[0]) fti_buf_printf(out, "{%s}", se->labels);
            fti_buf_printf(out, " %llu\n", (unsigned long long)se->count);
        }
    }
    fti_mutex_unlock(&m->mu);
}

/* === monitor: request log === */

struct fti_reqlog {
    fti_mutex mu;
    char *path;
    char *header;
    int fd;
    uint64_t size;
    uint64_t max_bytes;
    int keep;
};

static fti_result fti__reqlog_openfile(fti_reqlog *l, fti_error *err) {
    struct stat st;
    l->fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (l->fd < 0) return fti_error_set(err, FTI_ERR_IO, "%s: cannot open: %s", l->path, strerror(errno));
    l->size = fstat(l->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (l->size == 0 && l->header) {
        size_t n = strlen(l->header);
        if (write(l->fd, l->header, n) == (ssize_t)n && write(l->fd, "\n", 1) == 1)
            l->size += n + 1;
    }
    return FTI_OK;
}

FTIDEF fti_result fti_reqlog_open(const char *path, const fti_reqlog_opts *opts,
                                  const char *header, fti_reqlog **out, fti_error *err) {
    fti_reqlog *l;
    fti_result r;
    const char *base;
    if (!out || !path || !*path) return fti_error_set(err, FTI_ERR_INVALID, "reqlog: no path");
    *out = NULL;
    l = (fti_reqlog *)fti_calloc(1, sizeof *l);
    if (!l) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    l->fd = -1;
    l->path = fti_strdup(path);
    l->header = header ? fti_strdup(header) : NULL;
    l->max_bytes = opts && opts->max_bytes ? opts->max_bytes : (uint64_t)16 << 20;
    l->keep = opts && opts->keep > 0 ? opts->keep : 5;
    if (!l->path || (header && !l->header) || fti_mutex_init(&l->mu) != FTI_OK) {
        fti_free(l->path);
        fti_free(l->header);
        fti_free(l);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    base = fti_path_base(path);
    if (base != path) {
        char *dir = fti_strndup(path, (size_t)(base - path));
        r = dir ? fti_mkdirs(dir, err) : FTI_ERR_NOMEM;
        fti_free(dir);
        if (r != FTI_OK) {
            fti_reqlog_close(l);
            return r;
        }
    }
    r = fti__reqlog_openfile(l, err);
    if (r != FTI_OK) {
        fti_reqlog_close(l);
        return r;
    }
    *out = l;
    return FTI_OK;
}

static void fti__reqlog_rotate(fti_reqlog *l) {
    size_t n = strlen(l->path) + 24;
    char *a = (char *)fti_malloc(n), *b = (char *)fti_malloc(n);
    int k;
    if (a && b) {
        fsync(l->fd);
        close(l->fd);
        l->fd = -1;
        snprintf(a, n, "%s.%d", l->path, l->keep);
        remove(a);
        for (k = l->keep - 1; k >= 1; k--) {
            snprintf(a, n, "%s.%d", l->path, k);
            snprintf(b, n, "%s.%d", l->path, k + 1);
            rename(a, b);
        }
        snprintf(b, n, "%s.1", l->path);
        rename(l->path, b);
        fti__reqlog_openfile(l, NULL);
    }
    fti_free(a);
    fti_free(b);
}

FTIDEF fti_result fti_reqlog_write(fti_reqlog *l, const char *line, size_t len) {
    fti_result r = FTI_OK;
    char *tmp;
    if (!l || (!line && len)) return FTI_ERR_INVALID;
    tmp = (char *)fti_malloc(len + 1);
    if (!tmp) return FTI_ERR_NOMEM;
    memcpy(tmp, line, len);
    tmp[len] = '\n';
    fti_mutex_lock(&l->mu);
    if (l->fd >= 0 && l->size > 0 && l->size + len + 1 > l->max_bytes) fti__reqlog_rotate(l);
    if (l->fd < 0) r = FTI_ERR_IO;
    else {
        size_t done = 0;
        while (done < len + 1) {
            ssize_t w = write(l->fd, tmp + done, len + 1 - done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                r = errno == ENOSPC ? FTI_ERR_NOSPACE : FTI_ERR_IO;
                break;
            }
            done += (size_t)w;
        }
        l->size += done;
    }
    fti_mutex_unlock(&l->mu);
    fti_free(tmp);
    return r;
}

FTIDEF fti_result fti_reqlog_set_header(fti_reqlog *l, const char *header) {
    char *h;
    if (!l) return FTI_ERR_INVALID;
    h = header ? fti_strdup(header) : NULL;
    if (header && !h) return FTI_ERR_NOMEM;
    fti_mutex_lock(&l->mu);
    fti_free(l->header);
    l->header = h;
    fti_mutex_unlock(&l->mu);
    return FTI_OK;
}

FTIDEF fti_result fti_reqlog_flush(fti_reqlog *l) {
    fti_result r = FTI_OK;
    if (!l) return FTI_ERR_INVALID;
    fti_mutex_lock(&l->mu);
    if (l->fd >= 0 && fsync(l->fd) != 0 && errno != EINVAL) r = FTI_ERR_IO;
    fti_mutex_unlock(&l->mu);
    return r;
}

FTIDEF void fti_reqlog_close(fti_reqlog *l) {
    if (!l) return;
    if (l->fd >= 0) {
        fsync(l->fd);
        close(l->fd);
    }
    fti_mutex_destroy(&l->mu);
    fti_free(l->path);
    fti_free(l->header);
    fti_free(l);
}

/* === monitor: drift === */

FTIDEF int fti_drift_len_bin(size_t n) {
    int b = 0;
    if (n == 0) return 0;
    while (n > 1 && b < FTI_DRIFT_LEN_BINS - 2) {
        n >>= 1;
        b++;
    }
    return b + 1;
}

typedef struct fti__tokcount {
    uint64_t count;
    uint32_t id;
} fti__tokcount;

static int fti__tokcount_cmp(const void *a, const void *b) {
    const fti__tokcount *x = (const fti__tokcount *)a, *y = (const fti__tokcount *)b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id ? 1 : 0);
}

FTIDEF fti_result fti_drift_ref_build(const uint64_t *token_counts, size_t vocab,
                                      const uint64_t *len_hist, double byte_share, double val_ppl,
                                      fti_drift_ref **out, fti_error *err) {
    fti_drift_ref *r;
    fti__tokcount *tc;
    uint64_t total = 0, cum = 0, ltotal = 0;
    size_t i;
    if (!out) return fti_error_set(err, FTI_ERR_INVALID, "drift: no output");
    *out = NULL;
    if (!token_counts || vocab == 0 || vocab > ((size_t)1 << 31))
        return fti_error_set(err, FTI_ERR_INVALID, "drift: vocab size %lu out of range",
                             (unsigned long)vocab);
    for (i = 0; i < vocab; i++) {
        if (token_counts[i] > UINT64_MAX - total)
            return fti_error_set(err, FTI_ERR_INVALID, "drift: token counts overflow");
        total += token_counts[i];
    }
    if (total == 0) return fti_error_set(err, FTI_ERR_INVALID, "drift: reference has no tokens");
    r = (fti_drift_ref *)fti_calloc(1, sizeof *r);
    tc = (fti__tokcount *)fti_calloc(vocab, sizeof *tc);
    if (r) r->bucket_of = (unsigned char *)fti_malloc(vocab);
    if (!r || !tc || !r->bucket_of) {
        fti_drift_ref_free(r);
        fti_free(tc);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    r->vocab = vocab;
    for (i = 0; i < vocab; i++) {
        tc[i].count = token_counts[i];
        tc[i].id = (uint32_t)i;
    }
    qsort(tc, vocab, sizeof *tc, fti__tokcount_cmp);
    /* equal-mass buckets, most frequent first; unseen tokens join the last (rarest) bucket */
    for (i = 0; i < vocab; i++) {
        int b = tc[i].count == 0 ? FTI_DRIFT_BUCKETS - 1
                                 : (int)((double)cum / (double)total * FTI_DRIFT_BUCKETS);
        if (b >= FTI_DRIFT_BUCKETS) b = FTI_DRIFT_BUCKETS - 1;
        r->bucket_of[tc[i].id] = (unsigned char)b;
        r->tok_share[b] += (double)tc[i].count / (double)total;
        cum += tc[i].count;
    }
    fti_free(tc);
    if (len_hist) {
        for (i = 0; i < FTI_DRIFT_LEN_BINS; i++) ltotal += len_hist[i];
        for (i = 0; i < FTI_DRIFT_LEN_BINS && ltotal; i++)
            r->len_share[i] = (double)len_hist[i] / (double)ltotal;
    }
    r->byte_share = byte_share > 0 ? byte_share : 0;
    r->ppl = val_ppl > 0 ? val_ppl : 0;
    *out = r;
    return FTI_OK;
}

FTIDEF fti_result fti_drift_ref_from_shares(const double *tok_share, const double *len_share,
                                            double byte_share, double val_ppl,
                                            fti_drift_ref **out) {
    fti_drift_ref *r;
    if (!out || !tok_share) return FTI_ERR_INVALID;
    r = (fti_drift_ref *)fti_calloc(1, sizeof *r);
    if (!r) return FTI_ERR_NOMEM;
    memcpy(r->tok_share, tok_share, sizeof r->tok_share);
    if (len_share) memcpy(r->len_share, len_share, sizeof r->len_share);
    r->byte_share = byte_share;
    r->ppl = val_ppl;
    *out = r;
    return FTI_OK;
}

FTIDEF void fti_drift_ref_free(fti_drift_ref *ref) {
    if (!ref) return;
    fti_free(ref->bucket_of);
    fti_free(ref);
}

FTIDEF void fti_drift_bucketize(const fti_drift_ref *ref, const int32_t *ids, size_t n,
                                uint32_t *counts) {
    size_t i;
    if (!ref || !counts || (!ids && n)) return;
    for (i = 0; i < n; i++) {
        int b = FTI_DRIFT_BUCKETS - 1;
        if (ref->bucket_of && ids[i] >= 0 && (size_t)ids[i] < ref->vocab) b = ref->bucket_of[ids[i]];
        counts[b]++;
    }
}

FTIDEF void fti_drift_ref_json(const fti_drift_ref *ref, fti_buf *out) {
    fti_jw w;
    int i;
    fti_jw_init(&w, out, 0);
    fti_jw_obj_begin(&w);
    fti_jw_key(&w, "type");
    fti_jw_str(&w, "reference");
    fti_jw_key(&w, "tok_share");
    fti_jw_arr_begin(&w);
    for (i = 0; i < FTI_DRIFT_BUCKETS; i++) fti_jw_num(&w, ref->tok_share[i]);
    fti_jw_arr_end(&w);
    fti_jw_key(&w, "len_share");
    fti_jw_arr_begin(&w);
    for (i = 0; i < FTI_DRIFT_LEN_BINS; i++) fti_jw_num(&w, ref->len_share[i]);
    fti_jw_arr_end(&w);
    fti_jw_key(&w, "byte_share");
    fti_jw_num(&w, ref->byte_share);
    fti_jw_key(&w, "ppl");
    fti_jw_num(&w, ref->ppl);
    fti_jw_obj_end(&w);
}

FTIDEF double fti_psi(const double *expected, const double *actual, size_t n, double eps) {
    double se = 0, sa = 0, psi = 0;
    size_t i;
    if (eps <= 0) eps = 1e-4;
    for (i = 0; i < n; i++) {
        se += expected[i] > 0 ? expected[i] : 0;
        sa += actual[i] > 0 ? actual[i] : 0;
    }
    if (se <= 0 || sa <= 0) return 0;
    for (i = 0; i < n; i++) {
        double e = (expected[i] > 0 ? expected[i] : 0) / se;
        double a = (actual[i] > 0 ? actual[i] : 0) / sa;
        if (e < eps) e = eps;
        if (a < eps) a = eps;
        psi += (a - e) * log(a / e);
    }
    return psi;
}

FTIDEF double fti_js_divergence(const double *p, const double *q, size_t n) {
    double sp = 0, sq = 0, js = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        sp += p[i] > 0 ? p[i] : 0;
        sq += q[i] > 0 ? q[i] : 0;
    }
    if (sp <= 0 || sq <= 0) return 0;
    for (i = 0; i < n; i++) {
        double a = (p[i] > 0 ? p[i] : 0) / sp, b = (q[i] > 0 ? q[i] : 0) / sq, m = 0.5 * (a + b);
        if (a > 0) js += 0.5 * a * log2(a / m);
        if (b > 0) js += 0.5 * b * log2(b / m);
    }
    return js < 0 ? 0 : (js > 1 ? 1 : js);
}

FTIDEF void fti_drift_window_add(fti_drift_window *w, const uint32_t *bucket_counts,
                                 size_t n_tokens, size_t n_byte_fallback, double nll_mean) {
    int i;
    if (!w) return;
    w->n_prompts++;
    w->len[fti_drift_len_bin(n_tokens)]++;
    if (bucket_counts) {
        for (i = 0; i < FTI_DRIFT_BUCKETS; i++) {
            w->tok[i] += bucket_counts[i];
            w->n_tokens += bucket_counts[i];
        }
    }
    w->n_byte_fallback += n_byte_fallback;
    if (nll_mean >= 0 && n_tokens) {
        w->nll_sum += nll_mean * (double)n_tokens;
        w->nll_tokens += n_tokens;
    }
}

static void fti__thr_resolve(const fti_drift_thresholds *in, fti_drift_thresholds *t) {
    fti_drift_thresholds z;
    memset(&z, 0, sizeof z);
    if (!in) in = &z;
    t->psi_warn = in->psi_warn > 0 ? in->psi_warn : 0.1;
    t->psi_alert = in->psi_alert > 0 ? in->psi_alert : 0.25;
    t->js_warn = in->js_warn > 0 ? in->js_warn : 0.05;
    t->js_alert = in->js_alert > 0 ? in->js_alert : 0.1;
    t->byte_warn = in->byte_warn > 0 ? in->byte_warn : 0.05;
    t->byte_alert = in->byte_alert > 0 ? in->byte_alert : 0.15;
    t->ppl_warn = in->ppl_warn > 0 ? in->ppl_warn : 1.5;
    t->ppl_alert = in->ppl_alert > 0 ? in->ppl_alert : 2.0;
    t->length_alert = in->length_alert;
    t->min_tokens = in->min_tokens > 0 ? in->min_tokens : 200;
}

static void fti__judge(fti_drift_stats *st, const char *what, double v, double warn, double alert,
                       int may_alert) {
    int lv = v >= alert && may_alert ? 2 : (v >= warn ? 1 : 0);
    size_t n = strlen(st->reason);
    if (lv == 0) return;
    if ((int)st->level < lv) st->level = (fti_drift_level)lv;
    snprintf(st->reason + n, sizeof st->reason - n, "%s%s %.3f >= %.3f", n ? "; " : "", what, v,
             lv == 2 ? alert : warn);
}

FTIDEF void fti_drift_compute(const fti_drift_ref *ref, const fti_drift_window *w,
                              const fti_drift_thresholds *thr, fti_drift_stats *st) {
    fti_drift_thresholds t;
    double a[FTI_DRIFT_LEN_BINS];
    int i, has_len = 0;
    if (!st) return;
    memset(st, 0, sizeof *st);
    st->ppl = st->ppl_ratio = -1;
    if (!ref || !w) return;
    fti__thr_resolve(thr, &t);
    st->n_prompts = w->n_prompts;
    st->n_tokens = w->n_tokens;
    for (i = 0; i < FTI_DRIFT_BUCKETS; i++) a[i] = (double)w->tok[i];
    st->psi_tokens = fti_psi(ref->tok_share, a, FTI_DRIFT_BUCKETS, 0);
    st->js_tokens = fti_js_divergence(ref->tok_share, a, FTI_DRIFT_BUCKETS);
    for (i = 0; i < FTI_DRIFT_LEN_BINS; i++) {
        a[i] = (double)w->len[i];
        if (ref->len_share[i] > 0) has_len = 1;
    }
    if (has_len && w->n_prompts) {
        st->psi_length = fti_psi(ref->len_share, a, FTI_DRIFT_LEN_BINS, 0);
        st->js_length = fti_js_divergence(ref->len_share, a, FTI_DRIFT_LEN_BINS);
    }
    st->byte_share = w->n_tokens ? (double)w->n_byte_fallback / (double)w->n_tokens : 0;
    if (w->nll_tokens) {
        st->ppl = exp(w->nll_sum / (double)w->nll_tokens);
        if (ref->ppl > 0) st->ppl_ratio = st->ppl / ref->ppl;
    }
    if (w->n_tokens < t.min_tokens) {
        snprintf(st->reason, sizeof st->reason, "window has %llu < %llu tokens: not judged",
                 (unsigned long long)w->n_tokens, (unsigned long long)t.min_tokens);
        return;
    }
    fti__judge(st, "PSI(tokens)", st->psi_tokens, t.psi_warn, t.psi_alert, 1);
    fti__judge(st, "JS(tokens)", st->js_tokens, t.js_warn, t.js_alert, 1);
    if (has_len) {
        fti__judge(st, "PSI(length)", st->psi_length, t.psi_warn, t.psi_alert, t.length_alert);
        fti__judge(st, "JS(length)", st->js_length, t.js_warn, t.js_alert, t.length_alert);
    }
    fti__judge(st, "byte-fallback excess", st->byte_share - ref->byte_share, t.byte_warn,
               t.byte_alert, 1);
    if (st->ppl_ratio > 0) fti__judge(st, "perplexity ratio", st->ppl_ratio, t.ppl_warn, t.ppl_alert, 1);
}

/* === monitor: request records === */

FTIDEF void fti_request_record_json(const fti_request_record *rec, fti_buf *out) {
    fti_jw w;
    char ts[32];
    int i;
    fti_jw_init(&w, out, 0);
    fti_jw_obj_begin(&w);
    fti_jw_key(&w, "type");
    fti_jw_str(&w, "request");
    fti_jw_key(&w, "time");
    fti_jw_num(&w, floor(rec->time * 1000.0 + 0.5) / 1000.0);
    fti_time_iso8601(rec->time, ts);
    fti_jw_key(&w, "ts");
    fti_jw_str(&w, ts);
    fti_jw_key(&w, "endpoint");
    fti_jw_str(&w, rec->endpoint ? rec->endpoint : "");
    fti_jw_key(&w, "status");
    fti_jw_int(&w, rec->status);
    if (rec->model) {
        fti_jw_key(&w, "model");
        fti_jw_str(&w, rec->model);
    }
    fti_jw_key(&w, "stream");
    fti_jw_bool(&w, rec->stream);
    fti_jw_key(&w, "prompt_tokens");
    fti_jw_int(&w, rec->prompt_tokens);
    fti_jw_key(&w, "completion_tokens");
    fti_jw_int(&w, rec->completion_tokens);
    fti_jw_key(&w, "ttft_ms");
    if (rec->ttft_ms >= 0) fti_jw_num(&w, floor(rec->ttft_ms * 1000 + 0.5) / 1000);
    else fti_jw_null(&w);
    fti_jw_key(&w, "latency_ms");
    fti_jw_num(&w, floor(rec->latency_ms * 1000 + 0.5) / 1000);
    fti_jw_key(&w, "tokens_per_s");
    fti_jw_num(&w, floor(rec->tokens_per_s * 100 + 0.5) / 100);
    fti_jw_key(&w, "retrieval_hits");
    fti_jw_int(&w, rec->retrieval_hits);
    fti_jw_key(&w, "prompt_ppl");
    if (rec->prompt_ppl >= 0) fti_jw_num(&w, rec->prompt_ppl);
    else fti_jw_null(&w);
    fti_jw_key(&w, "byte_fallback");
    fti_jw_int(&w, rec->byte_fallback);
    if (rec->has_buckets) {
        fti_jw_key(&w, "tok_buckets");
        fti_jw_arr_begin(&w);
        for (i = 0; i < FTI_DRIFT_BUCKETS; i++) fti_jw_int(&w, rec->tok_buckets[i]);
        fti_jw_arr_end(&w);
    }
    if (rec->finish_reason) {
        fti_jw_key(&w, "finish_reason");
        fti_jw_str(&w, rec->finish_reason);
    }
    fti_jw_obj_end(&w);
}

static const char *fti__rec_str(const fti_json *root, const char *key, char **sb, size_t *left) {
    const fti_json *v = fti_json_get(root, key);
    char *s;
    if (!v || v->type != FTI_JSON_STRING || v->len + 1 > *left) return NULL;
    s = *sb;
    memcpy(s, v->str, v->len);
    s[v->len] = 0;
    *sb += v->len + 1;
    *left -= v->len + 1;
    return s;
}

FTIDEF fti_result fti_request_record_parse(const char *line, size_t len, fti_request_record *rec,
                                           char *strbuf, size_t strbuf_len) {
    fti_json_doc *doc = NULL;
    const fti_json *root, *v;
    fti_result r;
    if (!line || !rec) return FTI_ERR_INVALID;
    memset(rec, 0, sizeof *rec);
    r = fti_json_parse(line, len, NULL, &doc, NULL, NULL);
    if (r != FTI_OK) return FTI_ERR_FORMAT;
    root = fti_json_root(doc);
    if (!root || root->type != FTI_JSON_OBJECT) {
        fti_json_free(doc);
        return FTI_ERR_FORMAT;
    }
    if (strcmp(fti_json_get_str(root, "type", "request"), "request") != 0) {
        fti_json_free(doc);
        return FTI_ERR_NOT_FOUND;
    }
    rec->time = fti_json_get_num(root, "time", 0);
    rec->endpoint = fti__rec_str(root, "endpoint", &strbuf, &strbuf_len);
    rec->model = fti__rec_str(root, "model", &strbuf, &strbuf_len);
    rec->finish_reason = fti__rec_str(root, "finish_reason", &strbuf, &strbuf_len);
    rec->status = (int)fti_json_get_int(root, "status", 0);
    v = fti_json_get(root, "stream");
    rec->stream = v && v->type == FTI_JSON_TRUE;
    rec->prompt_tokens = (int)fti_json_get_int(root, "prompt_tokens", 0);
    rec->completion_tokens = (int)fti_json_get_int(root, "completion_tokens", 0);
    rec->ttft_ms = fti_json_get_num(root, "ttft_ms", -1);
    rec->latency_ms = fti_json_get_num(root, "latency_ms", 0);
    rec->tokens_per_s = fti_json_get_num(root, "tokens_per_s", 0);
    rec->retrieval_hits = (int)fti_json_get_int(root, "retrieval_hits", 0);
    rec->prompt_ppl = fti_json_get_num(root, "prompt_ppl", -1);
    rec->byte_fallback = (int)fti_json_get_int(root, "byte_fallback", 0);
    v = fti_json_get(root, "tok_buckets");
    if (v && v->type == FTI_JSON_ARRAY && v->len == FTI_DRIFT_BUCKETS) {
        const fti_json *e;
        int i = 0;
        rec->has_buckets = 1;
        for (e = v->child; e; e = e->next, i++) {
            if (e->type != FTI_JSON_NUMBER || !e->is_int || e->i < 0 || e->i > 0xffffffffLL) {
                rec->has_buckets = 0;
                break;
            }
            rec->tok_buckets[i] = (uint32_t)e->i;
        }
    }
    fti_json_free(doc);
    return FTI_OK;
}

static int fti__dbl_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

FTIDEF double fti_percentile(double *x, size_t n, double p) {
    double pos, frac;
    size_t i;
    if (!x || n == 0) return 0;
    qsort(x, n, sizeof *x, fti__dbl_cmp);
    if (p <= 0) return x[0];
    if (p >= 100) return x[n - 1];
    pos = p / 100.0 * (double)(n - 1);
    i = (size_t)pos;
    frac = pos - (double)i;
    return i + 1 < n ? x[i] + frac * (x[i + 1] - x[i]) : x[i];
}

/* === monitor: the bundle === */

typedef struct fti__win_entry {
    uint32_t b[FTI_DRIFT_BUCKETS];
    uint32_t n_tokens;
    uint32_t n_byte_fallback;
    double nll_mean;
} fti__win_entry;

#define FTI__TPS_SLOTS 10 /* seconds of the throughput meter */

struct fti_monitor {
    fti_mutex mu;
    fti_metrics *m;
    fti_reqlog *log;
    fti_drift_ref *ref;
    fti_drift_thresholds thr;
    fti__win_entry *win;
    size_t win_cap, win_n, win_head;
    int last_level;
    fti_log_fn log_fn;
    void *log_user;
    uint64_t tps_sec[FTI__TPS_SLOTS];
    uint64_t tps_tok[FTI__TPS_SLOTS];
    char model[160];
    int id_req, id_lat, id_ttft, id_ptok, id_ctok, id_tps, id_queue, id_active, id_conns,
        id_model, id_psi, id_js, id_byte, id_ppl, id_level, id_wtok, id_reject, id_alerts;
};

FTIDEF fti_result fti_monitor_create(const fti_monitor_opts *opts, fti_monitor **out,
                                     fti_error *err) {
    static const double lat_b[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    static const double ttft_b[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    fti_monitor *mon;
    fti_result r;
    if (!out) return fti_error_set(err, FTI_ERR_INVALID, "monitor: no output");
    *out = NULL;
    mon = (fti_monitor *)fti_calloc(1, sizeof *mon);
    if (!mon) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    if (fti_mutex_init(&mon->mu) != FTI_OK || fti_metrics_create(&mon->m) != FTI_OK) {
        fti_free(mon);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    if (opts) {
        mon->thr = opts->thresholds;
        mon->log_fn = opts->log_fn;
        mon->log_user = opts->log_user;
    }
    fti__thr_resolve(&mon->thr, &mon->thr);
    mon->win_cap = opts && opts->window_prompts ? opts->window_prompts : 200;
    mon->win = (fti__win_entry *)fti_calloc(mon->win_cap, sizeof *mon->win);
    if (!mon->win) {
        fti_monitor_free(mon);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    if (opts && opts->ref) {
        const fti_drift_ref *src = opts->ref;
        mon->ref = (fti_drift_ref *)fti_calloc(1, sizeof *mon->ref);
        if (mon->ref) {
            *mon->ref = *src;
            mon->ref->bucket_of = NULL;
            if (src->bucket_of) {
                mon->ref->bucket_of = (unsigned char *)fti_malloc(src->vocab);
                if (mon->ref->bucket_of) memcpy(mon->ref->bucket_of, src->bucket_of, src->vocab);
            }
        }
        if (!mon->ref || (src->bucket_of && !mon->ref->bucket_of)) {
            fti_monitor_free(mon);
            return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
        }
    }
    if (opts && opts->log_path) {
        fti_buf hdr;
        memset(&hdr, 0, sizeof hdr);
        if (mon->ref) fti_drift_ref_json(mon->ref, &hdr);
        r = fti_reqlog_open(opts->log_path, &opts->log, hdr.len ? hdr.data : NULL, &mon->log, err);
        fti_buf_free(&hdr);
        if (r != FTI_OK) {
            fti_monitor_free(mon);
            return r;
        }
    }
    mon->id_req = fti_metrics_define(mon->m, FTI_METRIC_COUNTER, "fti_requests_total",
                                     "Requests answered, by endpoint and status.", NULL, 0);
    mon->id_lat = fti_metrics_define(mon->m, FTI_METRIC_HISTOGRAM, "fti_request_duration_seconds",
                                     "Completion request latency.", lat_b,
                                     sizeof lat_b / sizeof lat_b[0]);
    mon->id_ttft = fti_metrics_define(mon->m, FTI_METRIC_HISTOGRAM,
                                      "fti_time_to_first_token_seconds", "Time to first token.",
                                      ttft_b, sizeof ttft_b / sizeof ttft_b[0]);
    mon->id_ptok = fti_metrics_define(mon->m, FTI_METRIC_COUNTER, "fti_prompt_tokens_total",
                                      "Prompt tokens processed.", NULL, 0);
    mon->id_ctok = fti_metrics_define(mon->m, FTI_METRIC_COUNTER, "fti_completion_tokens_total",
                                      "Completion tokens generated.", NULL, 0);
    mon->id_tps = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_tokens_per_second",
                                     "Completion tokens per second over the last 10 s.", NULL, 0);
    mon->id_queue = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_queue_depth",
                                       "Requests waiting for a batch slot.", NULL, 0);
    mon->id_active = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_active_sequences",
                                        "Sequences in the running batch.", NULL, 0);
    mon->id_conns = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_connections",
                                       "Open client connections.", NULL, 0);
    mon->id_model = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_model_info",
                                       "The model being served (value 1).", NULL, 0);
    mon->id_reject = fti_metrics_define(mon->m, FTI_METRIC_COUNTER, "fti_rejected_total",
                                        "Requests refused with 503, by reason.", NULL, 0);
    mon->id_psi = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_drift_psi",
                                     "Population stability index of recent prompts vs the "
                                     "training data.", NULL, 0);
    mon->id_js = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_drift_js",
                                    "Jensen-Shannon divergence (bits) of recent prompts vs the "
                                    "training data.", NULL, 0);
    mon->id_byte = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_drift_byte_fallback_share",
                                      "Share of recent prompt tokens that fell back to bytes.",
                                      NULL, 0);
    mon->id_ppl = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_drift_perplexity_ratio",
                                     "Recent prompt perplexity over validation perplexity.", NULL,
                                     0);
    mon->id_level = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_drift_level",
                                       "Drift level: 0 ok, 1 warn, 2 alert.", NULL, 0);
    mon->id_wtok = fti_metrics_define(mon->m, FTI_METRIC_GAUGE, "fti_drift_window_tokens",
                                      "Prompt tokens in the drift window.", NULL, 0);
    mon->id_alerts = fti_metrics_define(mon->m, FTI_METRIC_COUNTER, "fti_drift_alerts_total",
                                        "Drift level changes to warn or alert.", NULL, 0);
    *out = mon;
    return FTI_OK;
}

FTIDEF void fti_monitor_free(fti_monitor *mon) {
    if (!mon) return;
    fti_reqlog_close(mon->log);
    fti_metrics_free(mon->m);
    fti_drift_ref_free(mon->ref);
    fti_free(mon->win);
    fti_mutex_destroy(&mon->mu);
    fti_free(mon);
}

FTIDEF fti_metrics *fti_monitor_metrics(fti_monitor *mon) { return mon ? mon->m : NULL; }
FTIDEF const fti_drift_ref *fti_monitor_ref(const fti_monitor *mon) {
    return mon ? mon->ref : NULL;
}

/* The window's sums (mu held). */
static void fti__monitor_window(fti_monitor *mon, fti_drift_window *w) {
    size_t i;
    memset(w, 0, sizeof *w);
    for (i = 0; i < mon->win_n; i++) {
        const fti__win_entry *e = &mon->win[i];
        fti_drift_window_add(w, e->b, e->n_tokens, e->n_byte_fallback, e->nll_mean);
    }
}

static void fti__monitor_drift_locked(fti_monitor *mon, fti_drift_stats *st) {
    fti_drift_window w;
    fti__monitor_window(mon, &w);
    fti_drift_compute(mon->ref, &w, &mon->thr, st);
}

static void fti__label_kv(fti_buf *b, const char *k, const char *v) {
    if (b->len) fti_buf_putc(b, ',');
    fti_buf_printf(b, "%s=\"", k);
    fti_metrics_label_escape(b, v ? v : "", v ? strlen(v) : 0);
    fti_buf_putc(b, '"');
}

FTIDEF void fti_monitor_count(fti_monitor *mon, const char *endpoint, int status) {
    fti_buf l;
    char st[16];
    if (!mon) return;
    memset(&l, 0, sizeof l);
    snprintf(st, sizeof st, "%d", status);
    fti__label_kv(&l, "endpoint", endpoint);
    fti__label_kv(&l, "status", st);
    if (!l.oom) fti_metrics_add(mon->m, mon->id_req, l.data, 1);
    fti_buf_free(&l);
}

FTIDEF void fti_monitor_reject(fti_monitor *mon, const char *reason) {
    fti_buf l;
    if (!mon) return;
    memset(&l, 0, sizeof l);
    fti__label_kv(&l, "reason", reason);
    if (!l.oom) fti_metrics_add(mon->m, mon->id_reject, l.data, 1);
    fti_buf_free(&l);
}

FTIDEF void fti_monitor_record(fti_monitor *mon, const fti_request_record *rec) {
    fti_buf line, l;
    if (!mon || !rec) return;
    fti_monitor_count(mon, rec->endpoint, rec->status);
    memset(&l, 0, sizeof l);
    fti__label_kv(&l, "endpoint", rec->endpoint);
    if (rec->status == 200) {
        fti_metrics_observe(mon->m, mon->id_lat, l.data, rec->latency_ms / 1000.0);
        if (rec->ttft_ms >= 0) fti_metrics_observe(mon->m, mon->id_ttft, "", rec->ttft_ms / 1000.0);
        fti_metrics_add(mon->m, mon->id_ptok, "", rec->prompt_tokens);
        fti_metrics_add(mon->m, mon->id_ctok, "", rec->completion_tokens);
    }
    fti_buf_free(&l);
    if (rec->status == 200 && (rec->has_buckets || rec->prompt_ppl >= 0)) {
        fti__win_entry e;
        fti_drift_stats st;
        int changed = 0;
        memset(&e, 0, sizeof e);
        if (rec->has_buckets) memcpy(e.b, rec->tok_buckets, sizeof e.b);
        e.n_tokens = rec->prompt_tokens > 0 ? (uint32_t)rec->prompt_tokens : 0;
        e.n_byte_fallback = rec->byte_fallback > 0 ? (uint32_t)rec->byte_fallback : 0;
        e.nll_mean = rec->prompt_ppl > 0 ? log(rec->prompt_ppl) : -1;
        fti_mutex_lock(&mon->mu);
        mon->win[mon->win_head] = e;
        mon->win_head = (mon->win_head + 1) % mon->win_cap;
        if (mon->win_n < mon->win_cap) mon->win_n++;
        if (mon->ref) {
            fti__monitor_drift_locked(mon, &st);
            if ((int)st.level != mon->last_level) {
                changed = 1;
                mon->last_level = (int)st.level;
            }
        }
        fti_mutex_unlock(&mon->mu);
        if (changed) {
            static const char *const names[] = {"ok", "warn", "alert"};
            fti_buf d;
            char msg[256];
            memset(&d, 0, sizeof d);
            fti_buf_printf(&d, "{\"type\":\"drift\",\"time\":%.3f,\"level\":\"%s\",\"psi_tokens\":%.4f,"
                               "\"js_tokens\":%.4f,\"reason\":",
                           rec->time, names[st.level], st.psi_tokens, st.js_tokens);
            fti_json_escape(&d, st.reason, strlen(st.reason));
            fti_buf_putc(&d, '}');
            if (mon->log && !d.oom) fti_reqlog_write(mon->log, d.data, d.len);
            fti_buf_free(&d);
            if (st.level) fti_metrics_add(mon->m, mon->id_alerts, "", 1);
            snprintf(msg, sizeof msg, "drift %s: %s", names[st.level], st.reason);
            if (mon->log_fn)
                mon->log_fn(mon->log_user, st.level == FTI_DRIFT_ALERT ? FTI_LOG_ERROR
                                           : st.level == FTI_DRIFT_WARN ? FTI_LOG_WARN
                                                                         : FTI_LOG_INFO, msg);
        }
    }
    if (mon->log) {
        memset(&line, 0, sizeof line);
        fti_request_record_json(rec, &line);
        if (!line.oom) fti_reqlog_write(mon->log, line.data, line.len);
        fti_buf_free(&line);
    }
}

FTIDEF void fti_monitor_set_load(fti_monitor *mon, int queued, int active, int conns) {
    if (!mon) return;
    fti_metrics_set(mon->m, mon->id_queue, "", queued);
    fti_metrics_set(mon->m, mon->id_active, "", active);
    fti_metrics_set(mon->m, mon->id_conns, "", conns);
}

FTIDEF void fti_monitor_set_model(fti_monitor *mon, const char *model_id) {
    fti_buf l;
    if (!mon) return;
    memset(&l, 0, sizeof l);
    fti_mutex_lock(&mon->mu);
    if (mon->model[0]) {
        fti__label_kv(&l, "model", mon->model);
        if (!l.oom) fti_metrics_set(mon->m, mon->id_model, l.data, 0);
        l.len = 0;
    }
    snprintf(mon->model, sizeof mon->model, "%s", model_id ? model_id : "");
    fti_mutex_unlock(&mon->mu);
    fti__label_kv(&l, "model", model_id);
    if (!l.oom) fti_metrics_set(mon->m, mon->id_model, l.data, 1);
    fti_buf_free(&l);
}

FTIDEF void fti_monitor_tokens(fti_monitor *mon, uint64_t n_tokens) {
    uint64_t sec = fti_time_ns() / 1000000000u;
    size_t slot = (size_t)(sec % FTI__TPS_SLOTS);
    if (!mon) return;
    fti_mutex_lock(&mon->mu);
    if (mon->tps_sec[slot] != sec) {
        mon->tps_sec[slot] = sec;
        mon->tps_tok[slot] = 0;
    }
    mon->tps_tok[slot] += n_tokens;
    fti_mutex_unlock(&mon->mu);
}

FTIDEF void fti_monitor_drift(fti_monitor *mon, fti_drift_stats *st) {
    if (!st) return;
    memset(st, 0, sizeof *st);
    if (!mon) return;
    fti_mutex_lock(&mon->mu);
    fti__monitor_drift_locked(mon, st);
    fti_mutex_unlock(&mon->mu);
}

FTIDEF void fti_monitor_render(fti_monitor *mon, fti_buf *out) {
    fti_drift_stats st;
    uint64_t sec = fti_time_ns() / 1000000000u, tok = 0;
    size_t i;
    int have_ref;
    if (!mon || !out) return;
    fti_mutex_lock(&mon->mu);
    /* the last full seconds (the current one is still filling) */
    for (i = 0; i < FTI__TPS_SLOTS; i++)
        if (mon->tps_sec[i] + FTI__TPS_SLOTS > sec && mon->tps_sec[i] < sec) tok += mon->tps_tok[i];
    have_ref = mon->ref != NULL;
    if (have_ref) fti__monitor_drift_locked(mon, &st);
    fti_mutex_unlock(&mon->mu);
    fti_metrics_set(mon->m, mon->id_tps, "", (double)tok / (FTI__TPS_SLOTS - 1));
    if (have_ref) {
        fti_metrics_set(mon->m, mon->id_psi, "dist=\"tokens\"", st.psi_tokens);
        fti_metrics_set(mon->m, mon->id_psi, "dist=\"length\"", st.psi_length);
        fti_metrics_set(mon->m, mon->id_js, "dist=\"tokens\"", st.js_tokens);
        fti_metrics_set(mon->m, mon->id_js, "dist=\"length\"", st.js_length);
        fti_metrics_set(mon->m, mon->id_byte, "", st.byte_share);
        fti_metrics_set(mon->m, mon->id_ppl, "", st.ppl_ratio);
        fti_metrics_set(mon->m, mon->id_level, "", st.level);
        fti_metrics_set(mon->m, mon->id_wtok, "", (double)st.n_tokens);
    }
    fti_metrics_render(mon->m, out);
}

FTIDEF fti_result fti_monitor_flush(fti_monitor *mon) {
    if (!mon || !mon->log) return FTI_OK;
    return fti_reqlog_flush(mon->log);
}
/* ---- end src/09_monitor.c ---- */
/* ---- begin src/10_server.c ---- */
/* === server: implementation === */
/* #include "10_server.h" (amalgamated) */

#ifndef FTI_NO_SERVER

/* #include <errno.h> (already included) */
/* #include <math.h> (already included) */
/* #include <stdarg.h> (already included) */
/* #include <stdio.h> (already included) */
/* #include <stdlib.h> (already included) */
/* #include <string.h> (already included) */

#ifndef FTI_HTTP_MAX_REQUEST_LINE
#define FTI_HTTP_MAX_REQUEST_LINE 8192
#endif
#ifndef FTI_HTTP_MAX_HEAD
#define FTI_HTTP_MAX_HEAD 32768
#endif
#ifndef FTI_HTTP_MAX_FIELDS
#define FTI_HTTP_MAX_FIELDS 100
#endif
#ifndef FTI_HTTP_MAX_BODY
#define FTI_HTTP_MAX_BODY ((size_t)1 << 20)
#endif
#define FTI__HTTP_MAX_CHUNK_LINE 4096

/* === server: HTTP/1.1 request head === */

static void fti__http_limits_resolve(const fti_http_limits *in, fti_http_limits *out) {
    fti_http_limits z;
    memset(&z, 0, sizeof z);
    if (!in) in = &z;
    out->max_request_line = in->max_request_line ? in->max_request_line : FTI_HTTP_MAX_REQUEST_LINE;
    out->max_head = in->max_head ? in->max_head : FTI_HTTP_MAX_HEAD;
    out->max_fields = in->max_fields ? in->max_fields : FTI_HTTP_MAX_FIELDS;
    if (out->max_fields > FTI_HTTP_MAX_FIELDS_CAP) out->max_fields = FTI_HTTP_MAX_FIELDS_CAP;
    out->max_body = in->max_body ? in->max_body : FTI_HTTP_MAX_BODY;
}

/* RFC 9110 token characters. */
static int fti__http_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field-value octets: HTAB, SP, VCHAR, obs-text. */
static int fti__http_vchar(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

static int fti__http_ieq(const unsigned char *a, size_t n, const char *b) {
    size_t i;
    if (strlen(b) != n) return 0;
    for (i = 0; i < n; i++) {
        unsigned char x = a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
        if (x != y) return 0;
    }
    return 1;
}

static long fti__http_fail(fti_http_head *h, int status, const char *why) {
    h->error = why;
    return -(long)status;
}

/* Finds the end of the line starting at pos: returns 1 and *eol (index of the CR) when a CRLF is
 * found, 0 when more bytes are needed, -1 for a bare LF or a CR not followed by LF. */
static int fti__http_line(const unsigned char *buf, size_t len, size_t pos, size_t *eol) {
    size_t i;
    for (i = pos; i < len; i++) {
        if (buf[i] == '\n') return -1;
        if (buf[i] == '\r') {
            if (i + 1 >= len) return 0;
            if (buf[i + 1] != '\n') return -1;
            *eol = i;
            return 1;
        }
    }
    return 0;
}

/* Parses one field line [s, e) into f. Returns 0 or -1 (invalid). */
static int fti__http_field_line(const unsigned char *buf, size_t s, size_t e, fti_http_field *f) {
    size_t i = s, vs, ve;
    if (buf[s] == ' ' || buf[s] == '\t') return -1; /* obs-fold */
    while (i < e && fti__http_tchar(buf[i])) i++;
    if (i == s || i >= e || buf[i] != ':') return -1; /* empty name, bad char, space before ':' */
    f->name.off = s;
    f->name.len = i - s;
    vs = i + 1;
    while (vs < e && (buf[vs] == ' ' || buf[vs] == '\t')) vs++;
    ve = e;
    while (ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t')) ve--;
    for (i = vs; i < ve; i++)
        if (!fti__http_vchar(buf[i])) return -1;
    f->value.off = vs;
    f->value.len = ve - vs;
    return 0;
}

FTIDEF long fti_http_parse_head(const unsigned char *buf, size_t len, const fti_http_limits *lim_in,
                                fti_http_head *h) {
    fti_http_limits lim;
    size_t pos = 0, eol = 0, i, n_host = 0, n_cl = 0, n_te = 0, line_start;
    int r;
    const unsigned char *line;
    size_t line_len, sp1, sp2;

    fti__http_limits_resolve(lim_in, &lim);
    memset(h, 0, offsetof(fti_http_head, fields));
    h->head_len = 0;
    h->chunked = 0;
    h->content_length = 0;
    h->keep_alive = 0;
    h->expect_continue = 0;
    h->error = NULL;
    if (!buf && len) return fti__http_fail(h, 400, "no buffer");

    /* leading empty lines (a client's stray CRLF after a previous body) */
    while (pos + 1 < len && buf[pos] == '\r' && buf[pos + 1] == '\n') {
        pos += 2;
        if (pos > lim.max_request_line) return fti__http_fail(h, 400, "too many empty lines");
    }
    /* request line */
    line_start = pos;
    r = fti__http_line(buf, len, pos, &eol);
    if (r == 0) {
        /* incomplete: give up early once a limit is certainly crossed */
        size_t have = len - pos;
        if (have > 0 && buf[len - 1] == '\r') have--;
        if (have > lim.max_request_line) return fti__http_fail(h, 414, "request line too long");
        return FTI_HTTP_INCOMPLETE;
    }
    if (r < 0) return fti__http_fail(h, 400, "bare LF or CR in the request line");
    line = buf + line_start;
    line_len = eol - line_start;
    if (line_len > lim.max_request_line) return fti__http_fail(h, 414, "request line too long");
    for (sp1 = 0; sp1 < line_len && fti__http_tchar(line[sp1]); sp1++) {
    }
    if (sp1 == 0 || sp1 >= line_len || line[sp1] != ' ')
        return fti__http_fail(h, 400, "bad method");
    for (sp2 = sp1 + 1; sp2 < line_len && line[sp2] > 0x20 && line[sp2] < 0x7f; sp2++) {
    }
    if (sp2 == sp1 + 1 || sp2 >= line_len || line[sp2] != ' ')
        return fti__http_fail(h, 400, "bad request target");
    if (line[sp1 + 1] != '/' && !(sp2 == sp1 + 2 && line[sp1 + 1] == '*'))
        return fti__http_fail(h, 400, "request target must be an absolute path");
    if (line_len - (sp2 + 1) != 8 || memcmp(line + sp2 + 1, "HTTP/", 5) != 0 ||
        line[sp2 + 7] != '.' || line[sp2 + 6] < '0' || line[sp2 + 6] > '9' ||
        line[sp2 + 8] < '0' || line[sp2 + 8] > '9')
        return fti__http_fail(h, 400, "bad HTTP version");
    if (line[sp2 + 6] != '1') return fti__http_fail(h, 505, "HTTP version not supported");
    h->method.off = line_start;
    h->method.len = sp1;
    h->target.off = line_start + sp1 + 1;
    h->target.len = sp2 - sp1 - 1;
    h->version_minor = line[sp2 + 8] == '0' ? 0 : 1;
    h->keep_alive = h->version_minor >= 1;

    /* fields */
    pos = eol + 2;
    for (;;) {
        fti_http_field f;
        r = fti__http_line(buf, len, pos, &eol);
        if (r == 0) {
            if (len > lim.max_head) return fti__http_fail(h, 431, "header too large");
            return FTI_HTTP_INCOMPLETE;
        }
        if (r < 0) return fti__http_fail(h, 400, "bare LF or CR in the header");
        if (eol + 2 > lim.max_head) return fti__http_fail(h, 431, "header too large");
        if (eol == pos) {
            h->head_len = eol + 2;
            break;
        }
        if (fti__http_field_line(buf, pos, eol, &f) != 0)
            return fti__http_fail(h, 400, buf[pos] == ' ' || buf[pos] == '\t'
                                              ? "obsolete line folding"
                                              : "malformed header field");
        if (h->n_fields >= lim.max_fields) return fti__http_fail(h, 431, "too many header fields");
        h->fields[h->n_fields++] = f;
        pos = eol + 2;
    }

    /* semantics */
    for (i = 0; i < h->n_fields; i++) {
        const fti_http_field *f = &h->fields[i];
        const unsigned char *name = buf + f->name.off, *v = buf + f->value.off;
        size_t vn = f->value.len;
        if (fti__http_ieq(name, f->name.len, "host")) {
            n_host++;
        } else if (fti__http_ieq(name, f->name.len, "content-length")) {
            uint64_t x = 0;
            size_t k;
            int big = 0;
            if (++n_cl > 1) return fti__http_fail(h, 400, "duplicate Content-Length");
            if (vn == 0) return fti__http_fail(h, 400, "empty Content-Length");
            for (k = 0; k < vn; k++) {
                if (v[k] < '0' || v[k] > '9') return fti__http_fail(h, 400, "bad Content-Length");
                if (x > (UINT64_MAX - 9) / 10) big = 1;
                else x = x * 10 + (uint64_t)(v[k] - '0');
            }
            h->content_length = big ? UINT64_MAX : x;
        } else if (fti__http_ieq(name, f->name.len, "transfer-encoding")) {
            if (++n_te > 1) return fti__http_fail(h, 400, "duplicate Transfer-Encoding");
            if (!fti__http_ieq(v, vn, "chunked"))
                return fti__http_fail(h, 400, "Transfer-Encoding other than chunked");
            h->chunked = 1;
        } else if (fti__http_ieq(name, f->name.len, "connection")) {
            size_t k = 0;
            while (k < vn) {
                size_t s, e;
                while (k < vn && (v[k] == ' ' || v[k] == '\t' || v[k] == ',')) k++;
                s = k;
                while (k < vn && v[k] != ',') k++;
                e = k;
                while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
                if (fti__http_ieq(v + s, e - s, "close")) h->keep_alive = 0;
                else if (fti__http_ieq(v + s, e - s, "keep-alive") && h->version_minor == 0)
                    h->keep_alive = 1;
            }
        } else if (fti__http_ieq(name, f->name.len, "expect")) {
            if (!fti__http_ieq(v, vn, "100-continue"))
                return fti__http_fail(h, 417, "unsupported Expect");
            h->expect_continue = 1;
        }
    }
    /* Connection: close wins over keep-alive whatever the order */
    for (i = 0; i < h->n_fields; i++) {
        const fti_http_field *f = &h->fields[i];
        if (fti__http_ieq(buf + f->name.off, f->name.len, "connection")) {
            size_t k;
            for (k = 0; k + 5 <= f->value.len; k++)
                if (fti__http_ieq(buf + f->value.off + k, 5, "close") &&
                    (k == 0 || buf[f->value.off + k - 1] == ' ' ||
                     buf[f->value.off + k - 1] == ',') &&
                    (k + 5 == f->value.len || buf[f->value.off + k + 5] == ' ' ||
                     buf[f->value.off + k + 5] == ','))
                    h->keep_alive = 0;
        }
    }
    if (h->version_minor >= 1 && n_host != 1)
        return fti__http_fail(h, 400, n_host ? "duplicate Host" : "missing Host");
    if (n_host > 1) return fti__http_fail(h, 400, "duplicate Host");
    if (n_te && n_cl) return fti__http_fail(h, 400, "both Content-Length and Transfer-Encoding");
    if (n_te && h->version_minor == 0)
        return fti__http_fail(h, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (!h->chunked && h->content_length > (uint64_t)lim.max_body)
        return fti__http_fail(h, 413, "body too large");
    return (long)h->head_len;
}

/* === server: chunked bodies === */

enum { FTI__CH_SIZE = 0, FTI__CH_DATA, FTI__CH_DATA_END, FTI__CH_TRAILER, FTI__CH_DONE };

static int fti__hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

FTIDEF long fti_http_chunked_feed(fti_http_chunked *c, const unsigned char *buf, size_t len,
                                  const fti_http_limits *lim_in, fti_buf *out) {
    fti_http_limits lim;
    fti__http_limits_resolve(lim_in, &lim);
    if (!c || (!buf && len) || !out) return -500;
    while (c->pos < len || c->state == FTI__CH_DONE) {
        if (c->state == FTI__CH_SIZE) {
            size_t eol = 0, k = c->pos, n_digits = 0;
            uint64_t size = 0;
            int r = fti__http_line(buf, len, c->pos, &eol);
            if (r == 0) {
                if (len - c->pos > FTI__HTTP_MAX_CHUNK_LINE) return -400;
                return FTI_HTTP_INCOMPLETE;
            }
            if (r < 0 || eol - c->pos > FTI__HTTP_MAX_CHUNK_LINE) return -400;
            while (k < eol && fti__hexval(buf[k]) >= 0) {
                if (++n_digits > 15) return -400; /* no body of ours needs more */
                size = size * 16 + (uint64_t)fti__hexval(buf[k]);
                k++;
            }
            if (n_digits == 0) return -400;
            while (k < eol && (buf[k] == ' ' || buf[k] == '\t')) k++; /* BWS before ';' */
            if (k < eol) {
                if (buf[k] != ';') return -400;
                for (; k < eol; k++)
                    if (!fti__http_vchar(buf[k])) return -400;
            }
            c->pos = eol + 2;
            if (size == 0) {
                c->state = FTI__CH_TRAILER;
            } else {
                if (size > (uint64_t)lim.max_body || out->len > lim.max_body - (size_t)size)
                    return -413;
                c->remaining = size;
                c->state = FTI__CH_DATA;
            }
        } else if (c->state == FTI__CH_DATA) {
            size_t take = len - c->pos;
            if ((uint64_t)take > c->remaining) take = (size_t)c->remaining;
            fti_buf_append(out, buf + c->pos, take);
            if (out->oom) return -500;
            c->pos += take;
            c->remaining -= take;
            if (c->remaining == 0) c->state = FTI__CH_DATA_END;
        } else if (c->state == FTI__CH_DATA_END) {
            if (len - c->pos < 2) {
                if (buf[c->pos] != '\r') return -400;
                return FTI_HTTP_INCOMPLETE;
            }
            if (buf[c->pos] != '\r' || buf[c->pos + 1] != '\n') return -400;
            c->pos += 2;
            c->state = FTI__CH_SIZE;
        } else if (c->state == FTI__CH_TRAILER) {
            size_t eol = 0;
            fti_http_field f;
            int r = fti__http_line(buf, len, c->pos, &eol);
            if (r == 0) {
                if (c->n_trailer + (len - c->pos) > lim.max_head) return -431;
                return FTI_HTTP_INCOMPLETE;
            }
            if (r < 0) return -400;
            c->n_trailer += eol + 2 - c->pos;
            if (c->n_trailer > lim.max_head) return -431;
            if (eol == c->pos) {
                c->pos = eol + 2;
                c->state = FTI__CH_DONE;
                continue;
            }
            if (fti__http_field_line(buf, c->pos, eol, &f) != 0) return -400;
            if (++c->n_trailer_fields > lim.max_fields) return -431;
            c->pos = eol + 2;
        } else {
            return (long)c->pos;
        }
    }
    return FTI_HTTP_INCOMPLETE;
}

FTIDEF long fti_http_parse_request(const unsigned char *buf, size_t len, const fti_http_limits *lim,
                                   fti_http_head *head, fti_buf *body_buf, const char **body,
                                   size_t *body_len) {
    long r = fti_http_parse_head(buf, len, lim, head);
    if (body) *body = NULL;
    if (body_len) *body_len = 0;
    if (r <= 0) return r;
    if (head->chunked) {
        fti_http_chunked c;
        long b;
        memset(&c, 0, sizeof c);
        if (!body_buf) return -500;
        b = fti_http_chunked_feed(&c, buf + head->head_len, len - head->head_len, lim, body_buf);
        if (b <= 0) {
            if (b < 0) head->error = "bad chunked body";
            return b;
        }
        if (body) *body = body_buf->data ? body_buf->data : "";
        if (body_len) *body_len = body_buf->len;
        return (long)head->head_len + b;
    }
    if ((uint64_t)(len - head->head_len) < head->content_length) return FTI_HTTP_INCOMPLETE;
    if (body) *body = (const char *)buf + head->head_len;
    if (body_len) *body_len = (size_t)head->content_length;
    return (long)(head->head_len + (size_t)head->content_length);
}

FTIDEF size_t fti_http_head_field(const fti_http_head *head, const unsigned char *buf,
                                  const char *name, fti_http_span *value) {
    size_t i, n = 0;
    for (i = 0; i < head->n_fields; i++) {
        if (fti__http_ieq(buf + head->fields[i].name.off, head->fields[i].name.len, name)) {
            if (n == 0 && value) *value = head->fields[i].value;
            n++;
        }
    }
    return n;
}

FTIDEF const char *fti_http_reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* === server: the OpenAI API layer === */

static fti_result fti__api_bad(fti_error *err, const char **param, const char *name,
                               const char *msg) {
    if (param) *param = name;
    return fti_error_set(err, FTI_ERR_INVALID, "%s", msg);
}

/* Reads an optional number member into *out within [lo, hi]; 0 ok, else an error. */
static fti_result fti__api_num(const fti_json *root, const char *key, double lo, double hi,
                               double *out, const char **param, fti_error *err) {
    const fti_json *v = fti_json_get(root, key);
    char msg[160];
    if (!v || v->type == FTI_JSON_NULL) return FTI_OK;
    if (v->type != FTI_JSON_NUMBER) {
        snprintf(msg, sizeof msg, "'%s' must be a number", key);
        return fti__api_bad(err, param, key, msg);
    }
    if (!(v->num >= lo && v->num <= hi)) { /* NaN fails too */
        snprintf(msg, sizeof msg, "%g is not a valid value for '%s': expected %g to %g", v->num,
                 key, lo, hi);
        return fti__api_bad(err, param, key, msg);
    }
    *out = v->num;
    return FTI_OK;
}

static fti_result fti__api_int(const fti_json *root, const char *key, int64_t lo, int64_t hi,
                               int64_t *out, const char **param, fti_error *err) {
    const fti_json *v = fti_json_get(root, key);
    char msg[200];
    if (!v || v->type == FTI_JSON_NULL) return FTI_OK;
    if (v->type != FTI_JSON_NUMBER || !v->is_int) {
        snprintf(msg, sizeof msg, "'%s' must be an integer", key);
        return fti__api_bad(err, param, key, msg);
    }
    if (v->i < lo || v->i > hi) {
        snprintf(msg, sizeof msg, "%lld is not a valid value for '%s': expected %lld to %lld",
                 (long long)v->i, key, (long long)lo, (long long)hi);
        return fti__api_bad(err, param, key, msg);
    }
    *out = v->i;
    return FTI_OK;
}

/* The text of a chat message content: a string or an array of {"type":"text","text":...}. */
static int fti__api_content(const fti_json *c, fti_buf *out) {
    const fti_json *p;
    if (!c) return -1;
    if (c->type == FTI_JSON_STRING) {
        fti_buf_append(out, c->str, c->len);
        return 0;
    }
    if (c->type != FTI_JSON_ARRAY) return -1;
    for (p = c->child; p; p = p->next) {
        const fti_json *t = fti_json_get(p, "text");
        if (p->type != FTI_JSON_OBJECT || !t || t->type != FTI_JSON_STRING) return -1;
        if (strcmp(fti_json_get_str(p, "type", ""), "text") != 0) return -1;
        fti_buf_append(out, t->str, t->len);
    }
    return 0;
}

/* The chat template. The twin is not instruction-tuned, so the conversation is written as one
 * document in the shape it was trained on: earlier turns as context lines, then the last user
 * message as the title of the piece the model continues. */
static fti_result fti__api_render_chat(const fti_json *msgs, fti_api_request *req,
                                       const char **param, fti_error *err) {
    const fti_json *m, *last_user = NULL;
    fti_buf out, title;
    size_t n = 0;
    memset(&out, 0, sizeof out);
    memset(&title, 0, sizeof title);
    if (!msgs || msgs->type != FTI_JSON_ARRAY || msgs->len == 0)
        return fti__api_bad(err, param, "messages", "'messages' must be a non-empty array");
    for (m = msgs->child; m; m = m->next) {
        const char *role = fti_json_get_str(m, "role", NULL);
        if (m->type != FTI_JSON_OBJECT || !role)
            return fti__api_bad(err, param, "messages", "each message needs a string 'role'");
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") &&
            strcmp(role, "developer"))
            return fti__api_bad(err, param, "messages",
                                "message role must be system, developer, user or assistant");
        if (strcmp(role, "user") == 0) last_user = m;
        n++;
    }
    if (!last_user)
        return fti__api_bad(err, param, "messages", "'messages' needs at least one user message");
    for (m = msgs->child; m; m = m->next) {
        const char *role = fti_json_get_str(m, "role", "");
        fti_buf *dst = m == last_user ? &title : &out;
        size_t before = dst->len;
        if (m != last_user) fti_buf_printf(&out, "%s: ", role);
        if (fti__api_content(fti_json_get(m, "content"), dst) != 0) {
            fti_buf_free(&out);
            fti_buf_free(&title);
            return fti__api_bad(err, param, "messages",
                                "message content must be a string or an array of text parts");
        }
        (void)before;
        if (m != last_user) fti_buf_puts(&out, "\n");
    }
    if (out.len) fti_buf_puts(&out, "\n");
    fti_buf_append(&out, title.data ? title.data : "", title.len);
    fti_buf_puts(&out, "\n\n");
    if (out.oom || title.oom) {
        fti_buf_free(&out);
        fti_buf_free(&title);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    req->prompt = out.data;
    req->prompt_len = out.len;
    req->chat_title = title.data ? title.data : fti_strdup("");
    (void)n;
    return FTI_OK;
}

FTIDEF fti_result fti_api_parse_completion(fti_api_kind kind, const char *body, size_t len,
                                           int n_ctx, fti_api_request *req, const char **param,
                                           fti_error *err) {
    fti_json_doc *doc = NULL;
    const fti_json *root, *v;
    fti_json_opts jo;
    fti_result r;
    double d;
    int64_t i64;
    fti_error jerr;

    if (param) *param = NULL;
    if (!req) return fti_error_set(err, FTI_ERR_INVALID, "no request");
    memset(req, 0, sizeof *req);
    req->kind = kind;
    req->max_tokens = 16;
    req->temperature = 1.0f;
    req->top_p = 1.0f;
    req->use_retrieval = 1;
    if (n_ctx <= 0) n_ctx = 1;
    if (kind == FTI_API_CHAT) req->max_tokens = n_ctx;

    memset(&jo, 0, sizeof jo);
    jo.max_depth = 32;
    jo.max_nodes = 65536;
    if (fti_json_parse(body, len, &jo, &doc, NULL, &jerr) != FTI_OK) {
        if (param) *param = NULL;
        return fti_error_set(err, FTI_ERR_FORMAT, "request body is not valid JSON: %s", jerr.msg);
    }
    root = fti_json_root(doc);
    if (!root || root->type != FTI_JSON_OBJECT) {
        r = fti__api_bad(err, param, NULL, "request body must be a JSON object");
        goto fail;
    }
    v = fti_json_get(root, "model");
    if (v && v->type != FTI_JSON_NULL) {
        if (v->type != FTI_JSON_STRING) {
            r = fti__api_bad(err, param, "model", "'model' must be a string");
            goto fail;
        }
        req->model = fti_strndup(v->str, v->len);
    }
    if (kind == FTI_API_COMPLETION) {
        v = fti_json_get(root, "prompt");
        if (v && v->type == FTI_JSON_ARRAY && v->len == 1 && v->child->type == FTI_JSON_STRING)
            v = v->child;
        if (!v || v->type != FTI_JSON_STRING) {
            r = fti__api_bad(err, param, "prompt",
                             v ? "'prompt' must be a string (one prompt per request)"
                               : "'prompt' is required");
            goto fail;
        }
        req->prompt = fti_strndup(v->str, v->len);
        req->prompt_len = v->len;
        if (fti_json_get(root, "echo") && fti_json_get(root, "echo")->type == FTI_JSON_TRUE) {
            r = fti__api_bad(err, param, "echo", "'echo' is not supported");
            goto fail;
        }
    } else {
        r = fti__api_render_chat(fti_json_get(root, "messages"), req, param, err);
        if (r != FTI_OK) goto fail;
    }
    if (!req->prompt) {
        r = fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
        goto fail;
    }
    i64 = req->max_tokens;
    if ((r = fti__api_int(root, "max_tokens", 1, n_ctx, &i64, param, err)) != FTI_OK) goto fail;
    if ((r = fti__api_int(root, "max_completion_tokens", 1, n_ctx, &i64, param, err)) != FTI_OK)
        goto fail;
    req->max_tokens = (int)i64;
    d = req->temperature;
    if ((r = fti__api_num(root, "temperature", 0, 2, &d, param, err)) != FTI_OK) goto fail;
    req->temperature = (float)d;
    d = req->top_p;
    if ((r = fti__api_num(root, "top_p", 0, 1, &d, param, err)) != FTI_OK) goto fail;
    if (d <= 0) {
        r = fti__api_bad(err, param, "top_p", "'top_p' must be greater than 0");
        goto fail;
    }
    req->top_p = (float)d;
    i64 = 0;
    if ((r = fti__api_int(root, "top_k", 0, 1 << 20, &i64, param, err)) != FTI_OK) goto fail;
    req->top_k = (int)i64;
    d = 0;
    if ((r = fti__api_num(root, "presence_penalty", -2, 2, &d, param, err)) != FTI_OK) goto fail;
    if ((r = fti__api_num(root, "frequency_penalty", -2, 2, &d, param, err)) != FTI_OK) goto fail;
    i64 = 1;
    if ((r = fti__api_int(root, "n", 1, 1, &i64, param, err)) != FTI_OK) goto fail;
    if ((r = fti__api_int(root, "best_of", 1, 1, &i64, param, err)) != FTI_OK) goto fail;
    v = fti_json_get(root, "seed");
    if (v && v->type != FTI_JSON_NULL) {
        i64 = 0;
        if ((r = fti__api_int(root, "seed", INT64_MIN, INT64_MAX, &i64, param, err)) != FTI_OK)
            goto fail;
        req->seed = (uint64_t)i64;
        req->has_seed = 1;
    }
    v = fti_json_get(root, "stream");
    if (v && v->type != FTI_JSON_NULL) {
        if (v->type != FTI_JSON_TRUE && v->type != FTI_JSON_FALSE) {
            r = fti__api_bad(err, param, "stream", "'stream' must be a boolean");
            goto fail;
        }
        req->stream = v->type == FTI_JSON_TRUE;
    }
    v = fti_json_get(root, "stream_options");
    if (v && v->type == FTI_JSON_OBJECT) {
        const fti_json *u = fti_json_get(v, "include_usage");
        req->include_usage = u && u->type == FTI_JSON_TRUE;
    } else if (v && v->type != FTI_JSON_NULL) {
        r = fti__api_bad(err, param, "stream_options", "'stream_options' must be an object");
        goto fail;
    }
    v = fti_json_get(root, "logprobs");
    if (v && v->type != FTI_JSON_NULL && v->type != FTI_JSON_FALSE) {
        r = fti__api_bad(err, param, "logprobs", "'logprobs' is not supported");
        goto fail;
    }
    v = fti_json_get(root, "stop");
    if (v && v->type != FTI_JSON_NULL) {
        const fti_json *s = v->type == FTI_JSON_ARRAY ? v->child : v;
        if (v->type == FTI_JSON_ARRAY && v->len > FTI_API_MAX_STOP) {
            r = fti__api_bad(err, param, "stop", "'stop' takes at most 4 sequences");
            goto fail;
        }
        for (; s; s = v->type == FTI_JSON_ARRAY ? s->next : NULL) {
            if (s->type != FTI_JSON_STRING || s->len == 0 || s->len > FTI_API_MAX_STOP_LEN) {
                r = fti__api_bad(err, param, "stop",
                                 "'stop' must be a string or an array of non-empty strings of at "
                                 "most 64 bytes");
                goto fail;
            }
            memcpy(req->stop[req->n_stop], s->str, s->len);
            req->stop[req->n_stop][s->len] = 0;
            req->n_stop++;
        }
    }
    v = fti_json_get(root, "fti_retrieval");
    if (v && (v->type == FTI_JSON_FALSE || v->type == FTI_JSON_TRUE))
        req->use_retrieval = v->type == FTI_JSON_TRUE;
    fti_json_free(doc);
    return FTI_OK;
fail:
    fti_json_free(doc);
    fti_api_request_free(req);
    return r;
}

FTIDEF void fti_api_request_free(fti_api_request *req) {
    if (!req) return;
    fti_free(req->model);
    fti_free(req->prompt);
    fti_free(req->chat_title);
    req->model = req->prompt = req->chat_title = NULL;
}

FTIDEF void fti_api_write_error(fti_buf *out, const char *message, const char *type,
                                const char *param, const char *code) {
    fti_jw w;
    fti_jw_init(&w, out, 0);
    fti_jw_obj_begin(&w);
    fti_jw_key(&w, "error");
    fti_jw_obj_begin(&w);
    fti_jw_key(&w, "message");
    fti_jw_str(&w, message ? message : "");
    fti_jw_key(&w, "type");
    fti_jw_str(&w, type ? type : "invalid_request_error");
    fti_jw_key(&w, "param");
    if (param) fti_jw_str(&w, param);
    else fti_jw_null(&w);
    fti_jw_key(&w, "code");
    if (code) fti_jw_str(&w, code);
    else fti_jw_null(&w);
    fti_jw_obj_end(&w);
    fti_jw_obj_end(&w);
}

static void fti__api_usage(fti_jw *w, const fti_api_result *r) {
    fti_jw_key(w, "usage");
    fti_jw_obj_begin(w);
    fti_jw_key(w, "prompt_tokens");
    fti_jw_int(w, r->prompt_tokens);
    fti_jw_key(w, "completion_tokens");
    fti_jw_int(w, r->completion_tokens);
    fti_jw_key(w, "total_tokens");
    fti_jw_int(w, (int64_t)r->prompt_tokens + r->completion_tokens);
    fti_jw_obj_end(w);
}

static void fti__api_header(fti_jw *w, const fti_api_result *r, const char *object) {
    fti_jw_key(w, "id");
    fti_jw_str(w, r->id ? r->id : "cmpl-0");
    fti_jw_key(w, "object");
    fti_jw_str(w, object);
    fti_jw_key(w, "created");
    fti_jw_int(w, r->created);
    fti_jw_key(w, "model");
    fti_jw_str(w, r->model ? r->model : "");
    fti_jw_key(w, "system_fingerprint");
    fti_jw_str(w, "fti-" FTI_VERSION_STRING);
}

static void fti__api_chunks(fti_buf *out, fti_jw *w, const fti_api_result *r) {
    /* the retrieval chunks: spliced in as raw JSON (the generator wrote it with fti_jw) */
    if (r->chunks_json && r->chunks_json[0]) {
        fti_jw_key(w, "fti_chunks");
        fti_buf_puts(out, r->chunks_json);
    }
}

FTIDEF void fti_api_write_response(fti_buf *out, fti_api_kind kind, const fti_api_result *r) {
    fti_jw w;
    fti_jw_init(&w, out, 0);
    fti_jw_obj_begin(&w);
    fti__api_header(&w, r, kind == FTI_API_CHAT ? "chat.completion" : "text_completion");
    fti_jw_key(&w, "choices");
    fti_jw_arr_begin(&w);
    fti_jw_obj_begin(&w);
    fti_jw_key(&w, "index");
    fti_jw_int(&w, 0);
    if (kind == FTI_API_CHAT) {
        fti_jw_key(&w, "message");
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "role");
        fti_jw_str(&w, "assistant");
        fti_jw_key(&w, "content");
        fti_jw_strn(&w, r->text ? r->text : "", r->text ? r->text_len : 0);
        fti_jw_obj_end(&w);
    } else {
        fti_jw_key(&w, "text");
        fti_jw_strn(&w, r->text ? r->text : "", r->text ? r->text_len : 0);
    }
    fti_jw_key(&w, "logprobs");
    fti_jw_null(&w);
    fti_jw_key(&w, "finish_reason");
    if (r->finish_reason) fti_jw_str(&w, r->finish_reason);
    else fti_jw_null(&w);
    fti_jw_obj_end(&w);
    fti_jw_arr_end(&w);
    fti__api_usage(&w, r);
    fti__api_chunks(out, &w, r);
    fti_jw_obj_end(&w);
}

FTIDEF void fti_api_write_chunk(fti_buf *out, fti_api_kind kind, const fti_api_result *r,
                                int flags) {
    fti_jw w;
    fti_buf_puts(out, "data: ");
    fti_jw_init(&w, out, 0);
    fti_jw_obj_begin(&w);
    fti__api_header(&w, r, kind == FTI_API_CHAT ? "chat.completion.chunk" : "text_completion");
    fti_jw_key(&w, "choices");
    fti_jw_arr_begin(&w);
    if (!(flags & FTI_API_CHUNK_USAGE)) {
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "index");
        fti_jw_int(&w, 0);
        if (kind == FTI_API_CHAT) {
            fti_jw_key(&w, "delta");
            fti_jw_obj_begin(&w);
            if (flags & FTI_API_CHUNK_FIRST) {
                fti_jw_key(&w, "role");
                fti_jw_str(&w, "assistant");
            }
            if (r->text_len || (flags & FTI_API_CHUNK_FIRST)) {
                fti_jw_key(&w, "content");
                fti_jw_strn(&w, r->text ? r->text : "", r->text ? r->text_len : 0);
            }
            fti_jw_obj_end(&w);
        } else {
            fti_jw_key(&w, "text");
            fti_jw_strn(&w, r->text ? r->text : "", r->text ? r->text_len : 0);
        }
        fti_jw_key(&w, "logprobs");
        fti_jw_null(&w);
        fti_jw_key(&w, "finish_reason");
        if (r->finish_reason) fti_jw_str(&w, r->finish_reason);
        else fti_jw_null(&w);
        fti_jw_obj_end(&w);
    }
    fti_jw_arr_end(&w);
    if (flags & FTI_API_CHUNK_USAGE) fti__api_usage(&w, r);
    if (flags & FTI_API_CHUNK_FIRST) fti__api_chunks(out, &w, r);
    fti_jw_obj_end(&w);
    fti_buf_puts(out, "\n\n");
}

FTIDEF void fti_api_write_done(fti_buf *out) { fti_buf_puts(out, "data: [DONE]\n\n"); }

/* === server: the echo generator === */

typedef struct fti__echo {
    char id[64];
    int n_ctx;
    unsigned step_us;
    int end_after;
    int fail_every;
    int n_started;
    char piece[64];
} fti__echo;

typedef struct fti__echo_seq {
    uint64_t state;
    int n_out;
    int32_t *ids;
    size_t n_ids;
} fti__echo_seq;

static const char *const fti__echo_words[] = {
    "The", " twin", " writes", " in", " a", " voice", " that", " is", " almost", " its", " own",
    ",", " and", " the", " server", " keeps", " every", " word", " in", " order", "."};
#define FTI__ECHO_NW (sizeof(fti__echo_words) / sizeof(fti__echo_words[0]))

static const char *fti__echo_id(void *user) { return ((fti__echo *)user)->id; }
static int fti__echo_n_ctx(void *user) { return ((fti__echo *)user)->n_ctx; }

static fti_result fti__echo_start(void *user, const char *prompt, size_t prompt_len,
                                  const fti_gen_params *p, void **seq, fti_gen_prompt_info *info,
                                  fti_error *err) {
    fti__echo *e = (fti__echo *)user;
    fti__echo_seq *s;
    size_t i;
    e->n_started++;
    if (e->fail_every > 0 && e->n_started % e->fail_every == 0)
        return fti_error_set(err, FTI_ERR_IO, "echo: injected failure");
    if (prompt_len + (size_t)p->max_tokens > (size_t)e->n_ctx)
        return fti_error_set(err, FTI_ERR_LIMIT,
                             "This model's maximum context length is %d tokens, but %lu were "
                             "requested (%lu in the prompt, %d for the completion)",
                             e->n_ctx, (unsigned long)(prompt_len + (size_t)p->max_tokens),
                             (unsigned long)prompt_len, p->max_tokens);
    s = (fti__echo_seq *)fti_calloc(1, sizeof *s);
    if (!s) return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    s->ids = (int32_t *)fti_malloc((prompt_len ? prompt_len : 1) * sizeof(int32_t));
    if (!s->ids) {
        fti_free(s);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    for (i = 0; i < prompt_len; i++) s->ids[i] = (unsigned char)prompt[i];
    s->n_ids = prompt_len;
    s->state = fti_hash64(prompt, prompt_len, p->seed) % FTI__ECHO_NW;
    memset(info, 0, sizeof *info);
    info->ids = s->ids;
    info->n_tokens = prompt_len;
    info->nll_mean = -1;
    if (p->use_retrieval) {
        info->chunks_json = "[{\"id\":\"echo-0\",\"score\":1.0}]";
        info->n_chunks = 1;
    }
    *seq = s;
    return FTI_OK;
}

static void fti__echo_sleep(unsigned us) {
    struct timespec ts;
    if (!us) return;
    ts.tv_sec = (time_t)(us / 1000000u);
    ts.tv_nsec = (long)(us % 1000000u) * 1000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static fti_result fti__echo_step(void *user, void **seqs, size_t n, fti_gen_token *out,
                                 fti_error *err) {
    fti__echo *e = (fti__echo *)user;
    size_t i;
    (void)err;
    fti__echo_sleep(e->step_us);
    for (i = 0; i < n; i++) {
        fti__echo_seq *s = (fti__echo_seq *)seqs[i];
        const char *w = fti__echo_words[(s->state + (uint64_t)s->n_out) % FTI__ECHO_NW];
        s->n_out++;
        out[i].id = (int32_t)((s->state + (uint64_t)s->n_out) % FTI__ECHO_NW);
        out[i].text = w;
        out[i].text_len = strlen(w);
        out[i].is_end = e->end_after > 0 && s->n_out > e->end_after;
        if (out[i].is_end) out[i].text_len = 0;
    }
    return FTI_OK;
}

static void fti__echo_end(void *user, void *seq) {
    fti__echo_seq *s = (fti__echo_seq *)seq;
    (void)user;
    if (!s) return;
    fti_free(s->ids);
    fti_free(s);
}

static void fti__echo_release(void *user) { fti_free(user); }

FTIDEF fti_result fti_gen_echo_create(const fti_gen_echo_opts *opts, fti_gen *gen) {
    fti__echo *e;
    if (!gen) return FTI_ERR_INVALID;
    memset(gen, 0, sizeof *gen);
    e = (fti__echo *)fti_calloc(1, sizeof *e);
    if (!e) return FTI_ERR_NOMEM;
    snprintf(e->id, sizeof e->id, "%s", opts && opts->id ? opts->id : "fti-echo");
    e->n_ctx = opts && opts->n_ctx > 0 ? opts->n_ctx : 2048;
    e->step_us = opts ? opts->step_us : 0;
    e->end_after = opts ? opts->end_after : 0;
    e->fail_every = opts ? opts->fail_every : 0;
    gen->user = e;
    gen->model_id = fti__echo_id;
    gen->n_ctx = fti__echo_n_ctx;
    gen->seq_start = fti__echo_start;
    gen->step = fti__echo_step;
    gen->seq_end = fti__echo_end;
    gen->release = fti__echo_release;
    return FTI_OK;
}

/* === server: sockets, connections and the scheduler === */

#if FTI__HAVE_THREADS && !defined(_WIN32)
#define FTI__SERVER 1
#else
#define FTI__SERVER 0
#endif

#if FTI__SERVER
/* #include <fcntl.h> (already included) */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
/* #include <unistd.h> (already included) */
/* #include <pthread.h> (already included) */

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* programs ignore SIGPIPE themselves (fti-serve does) */
#endif

/* The stop flag is written from a signal handler or another thread: atomics where the compiler
 * has them (lock-free on int, so async-signal-safe), else volatile. */
#if FTI__ATOMICS
#define FTI__STOP_SET(s) __atomic_store_n(&(s)->stop_flag, 1, __ATOMIC_RELEASE)
#define FTI__STOPPING(s) __atomic_load_n(&(s)->stop_flag, __ATOMIC_ACQUIRE)
#else
#define FTI__STOP_SET(s) ((s)->stop_flag = 1)
#define FTI__STOPPING(s) ((s)->stop_flag)
#endif

#define FTI__DRAIN_MS 30000
#define FTI__LINGER_MS 1000
#define FTI__IN_SLACK 65536

enum { FTI__JOB_QUEUED = 0, FTI__JOB_ACTIVE, FTI__JOB_DONE };
enum { FTI__C_HEAD = 0, FTI__C_BODY, FTI__C_BUSY, FTI__C_CLOSING, FTI__C_LINGER };

typedef struct fti__genref {
    fti_gen gen;
    int refs;      /* being current + sequences admitted on it */
    char id[128];
    int n_ctx;
} fti__genref;

typedef struct fti__conn fti__conn;

typedef struct fti__job {
    struct fti__job *next, *prev;      /* srv->jobs (all jobs) */
    struct fti__job *qnext;            /* srv->queue */
    fti__conn *conn;                   /* NULL once the connection is gone */
    fti_api_request req;
    const char *endpoint;
    char id[48];
    int64_t created;
    fti__genref *g;
    void *seq;
    int state;
    int cancelled;
    int ended;                         /* scheduler only: finished, not yet retired */
    int status;                        /* 0 until known; 200 once started */
    int http_started;                  /* I/O side: streaming headers sent */
    fti_buf text;                      /* completion text so far */
    size_t emitted;                    /* text bytes already sent as stream chunks */
    int n_tokens;
    int prompt_tokens;
    const char *finish;
    fti_buf out;                       /* bytes for the I/O thread */
    uint64_t t_start_ns, t_first_ns;
    size_t byte_fallback;
    double nll_mean;
    char *chunks_json;
    int n_chunks;
    int has_buckets;
    uint32_t buckets[FTI_DRIFT_BUCKETS];
} fti__job;

struct fti__conn {
    int fd;
    int phase;
    fti_buf in;
    size_t scanned;          /* bytes of in already checked for a newline */
    int parse_pending;       /* new line ends since the last head parse */
    fti_http_head *head;
    long head_len;
    fti_http_chunked ch;
    fti_buf chunked_body;
    fti_buf out;
    size_t out_off;
    int first_request;
    int close_after;
    int sent_continue;
    int peer_eof;
    uint64_t t_head_ms;      /* when the current head started (deadline origin) */
    uint64_t t_body_ms;
    uint64_t t_idle_ms;
    uint64_t t_write_ms;     /* last write progress */
    uint64_t t_linger_ms;
    fti__job *job;
};

struct fti_server {
    fti_server_opts o;
    fti_http_limits lim;
    char host[256];
    int listen_fd;
    int port;
    int wake_rd, wake_wr;
    int reserve_fd;
    volatile int stop_flag;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int mu_ok, cv_ok;
    pthread_t sched;
    int sched_started;
    int sched_stop;
    int wake_pending;
    fti__genref *cur;
    fti__job *jobs;          /* every live job */
    fti__job *qhead, *qtail;
    int n_queued, n_active;
    fti__conn **conns;
    int n_conns;
    struct pollfd *pfds;
    uint64_t accept_pause_until_ms;
    uint64_t job_counter;
    fti_server_stats st;
};

static uint64_t fti__now_ms(void) { return fti_time_ns() / 1000000u; }
/* Milliseconds from t to now; 0 when t is later (stamped after `now` was read). */
static uint64_t fti__since(uint64_t now, uint64_t t) { return now > t ? now - t : 0; }

static void fti__srv_log(fti_server *s, fti_log_level lv, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void fti__srv_log(fti_server *s, fti_log_level lv, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    if (!s->o.log) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->o.log(s->o.log_user, lv, msg);
}

static void fti__wake_io(fti_server *s) {
    /* called with mu held */
    if (!s->wake_pending) {
        char c = 'w';
        s->wake_pending = 1;
        if (write(s->wake_wr, &c, 1) < 0) {
            /* the pipe is full: the loop is awake anyway */
        }
    }
}

static int fti__set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return 0;
}

/* Drops one reference to a generator (mu held); returns it when it must be released. */
static fti__genref *fti__gen_unref(fti__genref *g) {
    if (g && --g->refs == 0) return g;
    return NULL;
}

static void fti__gen_release(fti__genref *g) {
    if (!g) return;
    if (g->gen.release) g->gen.release(g->gen.user);
    fti_free(g);
}

static fti__genref *fti__gen_wrap(const fti_gen *gen) {
    fti__genref *g = (fti__genref *)fti_calloc(1, sizeof *g);
    const char *id;
    if (!g) return NULL;
    g->gen = *gen;
    g->refs = 1;
    id = gen->model_id ? gen->model_id(gen->user) : NULL;
    snprintf(g->id, sizeof g->id, "%s", id ? id : "fti");
    g->n_ctx = gen->n_ctx ? gen->n_ctx(gen->user) : 2048;
    if (g->n_ctx <= 0) g->n_ctx = 1;
    return g;
}

/* --- responses ---------------------------------------------------------------------------------- */

static void fti__respond(fti_server *s, fti__conn *c, int status, const char *ctype,
                         const char *body, size_t n, const char *extra_headers) {
    (void)s;
    if (status >= 400 && status != 404 && status != 405) c->close_after = 1;
    fti_buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %lu\r\n%s%s",
                   status, fti_http_reason(status), ctype, (unsigned long)n,
                   c->close_after ? "Connection: close\r\n" : "",
                   extra_headers ? extra_headers : "");
    if (!c->close_after && c->head && c->head->version_minor == 0)
        fti_buf_puts(&c->out, "Connection: keep-alive\r\n");
    fti_buf_puts(&c->out, "Cache-Control: no-store\r\n\r\n");
    fti_buf_append(&c->out, body, n);
}

static void fti__respond_error(fti_server *s, fti__conn *c, int status, const char *msg,
                               const char *type, const char *param) {
    fti_buf b;
    memset(&b, 0, sizeof b);
    fti_api_write_error(&b, msg, type, param, NULL);
    fti__respond(s, c, status, "application/json", b.data ? b.data : "", b.len,
                 status == 503 ? "Retry-After: 1\r\n" : NULL);
    fti_buf_free(&b);
}

static const char fti__dashboard_html[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>fti twin</title>"
    "<meta name=\"viewport\" content=\"width=device-width\"><style>"
    "body{font:15px system-ui,sans-serif;margin:0;background:#f6f5f1;color:#222}"
    "header{background:#2d3a4a;color:#fff;padding:10px 20px}h1{font-size:18px;margin:0}"
    "main{display:grid;grid-template-columns:1fr 1fr;gap:16px;padding:16px 20px}"
    ".cards{display:grid;grid-template-columns:repeat(3,1fr);gap:8px}"
    ".card{background:#fff;border-radius:6px;padding:8px 10px;box-shadow:0 1px 2px #0002}"
    ".card b{display:block;font-size:20px}.card span{font-size:12px;color:#666}"
    ".ok{color:#2a7a2a}.warn{color:#b07000}.alert{color:#b00020}"
    "textarea{width:100%;height:90px;box-sizing:border-box}"
    "#out{white-space:pre-wrap;background:#fff;min-height:160px;padding:8px;border-radius:6px}"
    "</style></head><body><header><h1>fti &mdash; <span id=\"model\">model</span></h1></header>"
    "<main><section><h2>Metrics</h2><div class=\"cards\" id=\"cards\"></div>"
    "<h2>Drift</h2><div class=\"cards\" id=\"drift\"></div></section>"
    "<section><h2>Talk to the twin</h2><textarea id=\"prompt\">The</textarea>"
    "<p><button id=\"go\">Send</button> max tokens <input id=\"mt\" value=\"64\" size=\"4\"></p>"
    "<div id=\"out\"></div></section></main><script>\n"
    "function parse(t){var m={};t.split('\\n').forEach(function(l){if(!l||l[0]=='#')return;"
    "var i=l.lastIndexOf(' ');var k=l.slice(0,i),v=parseFloat(l.slice(i+1));m[k]=(m[k]||0)+v;"
    "var b=k.indexOf('{');if(b>0){var n=k.slice(0,b);m[n]=(m[n]||0)+v;}});return m;}\n"
    "function card(l,v,c){return '<div class=\"card\"><b class=\"'+(c||'')+'\">'+v+"
    "'</b><span>'+l+'</span></div>';}\n"
    "function f(x,d){return (x===undefined||isNaN(x))?'-':x.toFixed(d);}\n"
    "function refresh(){fetch('/metrics').then(function(r){return r.text();}).then(function(t){"
    "var m=parse(t);var lv=m['fti_drift_level']||0;var cls=['ok','warn','alert'][lv];"
    "var p50=m['fti_request_duration_seconds_sum']/(m['fti_request_duration_seconds_count']||1);"
    "document.getElementById('cards').innerHTML=card('requests',f(m['fti_requests_total'],0))+"
    "card('tokens/s',f(m['fti_tokens_per_second'],1))+card('active',f(m['fti_active_sequences'],0))+"
    "card('queued',f(m['fti_queue_depth'],0))+card('connections',f(m['fti_connections'],0))+"
    "card('mean latency s',f(p50,3));"
    "document.getElementById('drift').innerHTML=card('level',['ok','warn','alert'][lv],cls)+"
    "card('PSI tokens',f(m['fti_drift_psi{dist=\"tokens\"}'],3))+"
    "card('JS tokens',f(m['fti_drift_js{dist=\"tokens\"}'],3))+"
    "card('PSI length',f(m['fti_drift_psi{dist=\"length\"}'],3))+"
    "card('byte fallback',f(m['fti_drift_byte_fallback_share'],3))+"
    "card('ppl ratio',f(m['fti_drift_perplexity_ratio'],2));"
    "document.body.setAttribute('data-loaded','1');}).catch(function(){});"
    "fetch('/v1/models').then(function(r){return r.json();}).then(function(j){"
    "document.getElementById('model').textContent=j.data[0].id;}).catch(function(){});}\n"
    "refresh();setInterval(refresh,2000);\n"
    "document.getElementById('go').onclick=function(){var o=document.getElementById('out');"
    "o.textContent='';fetch('/v1/completions',{method:'POST',headers:{'Content-Type':"
    "'application/json'},body:JSON.stringify({prompt:document.getElementById('prompt').value,"
    "max_tokens:parseInt(document.getElementById('mt').value)||64,stream:true})}).then("
    "function(r){var rd=r.body.getReader(),dec=new TextDecoder(),buf='';function pump(){"
    "return rd.read().then(function(x){if(x.done)return;buf+=dec.decode(x.value,{stream:true});"
    "var i;while((i=buf.indexOf('\\n\\n'))>=0){var ev=buf.slice(0,i);buf=buf.slice(i+2);"
    "if(ev.indexOf('data: ')!=0)continue;var d=ev.slice(6);if(d=='[DONE]')return;"
    "try{var j=JSON.parse(d);if(j.error){o.textContent=j.error.message;return;}"
    "o.textContent+=j.choices[0].text;}catch(e){}}return pump();});}return pump();});};\n"
    "</script></body></html>\n";

/* --- jobs (mu held unless noted) ---------------------------------------------------------------- */

static void fti__job_free(fti__job *j) {
    fti_api_request_free(&j->req);
    fti_buf_free(&j->text);
    fti_buf_free(&j->out);
    fti_free(j->chunks_json);
    fti_free(j);
}

static void fti__job_unlink(fti_server *s, fti__job *j) {
    if (j->prev) j->prev->next = j->next;
    else s->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
}

static fti_api_result fti__job_result(fti__job *j, const char *text, size_t n) {
    fti_api_result r;
    memset(&r, 0, sizeof r);
    r.id = j->id;
    r.model = j->g ? j->g->id : "";
    r.created = j->created;
    r.text = text;
    r.text_len = n;
    r.prompt_tokens = j->prompt_tokens;
    r.completion_tokens = j->n_tokens;
    r.chunks_json = j->chunks_json;
    return r;
}

/* Longest suffix of text that is a proper prefix of a stop string (held back while streaming). */
static size_t fti__stop_holdback(const fti__job *j) {
    size_t k, best = 0;
    for (k = 0; k < j->req.n_stop; k++) {
        size_t sl = strlen(j->req.stop[k]), m;
        for (m = sl - 1; m > best; m--)
            if (m <= j->text.len && memcmp(j->text.data + j->text.len - m, j->req.stop[k], m) == 0) {
                best = m;
                break;
            }
    }
    return best;
}

/* Emits stream chunks for text[emitted..upto). */
static void fti__job_emit(fti__job *j, size_t upto) {
    fti_api_result r;
    if (!j->req.stream || upto <= j->emitted) return;
    r = fti__job_result(j, j->text.data + j->emitted, upto - j->emitted);
    fti_api_write_chunk(&j->out, j->req.kind, &r, 0);
    j->emitted = upto;
}

static void fti__job_finish_output(fti__job *j) {
    fti_api_result r;
    if (j->req.stream) {
        fti__job_emit(j, j->text.len);
        r = fti__job_result(j, "", 0);
        r.finish_reason = j->finish;
        fti_api_write_chunk(&j->out, j->req.kind, &r, 0);
        if (j->req.include_usage) fti_api_write_chunk(&j->out, j->req.kind, &r, FTI_API_CHUNK_USAGE);
        fti_api_write_done(&j->out);
    } else {
        r = fti__job_result(j, j->text.data ? j->text.data : "", j->text.len);
        r.finish_reason = j->finish;
        fti_api_write_response(&j->out, j->req.kind, &r);
    }
}

/* Appends one token; returns 1 when the job finished. */
static int fti__job_token(fti__job *j, const fti_gen_token *t) {
    size_t scan_from, k, safe;
    if (j->n_tokens == 0) j->t_first_ns = fti_time_ns();
    j->n_tokens++;
    scan_from = j->text.len;
    if (t->text && t->text_len) fti_buf_append(&j->text, t->text, t->text_len);
    if (t->is_end) j->finish = "stop";
    if (j->req.n_stop) {
        /* a stop string may straddle the previous text: start the search early enough */
        size_t best = (size_t)-1;
        scan_from = scan_from > FTI_API_MAX_STOP_LEN ? scan_from - FTI_API_MAX_STOP_LEN : 0;
        for (k = 0; k < j->req.n_stop; k++) {
            size_t sl = strlen(j->req.stop[k]), p;
            for (p = scan_from; p + sl <= j->text.len && p < best; p++)
                if (memcmp(j->text.data + p, j->req.stop[k], sl) == 0) {
                    best = p;
                    break;
                }
        }
        if (best != (size_t)-1) {
            if (best < j->emitted) best = j->emitted;
            j->text.len = best;
            if (j->text.data) j->text.data[best] = 0;
            j->finish = "stop";
        }
    }
    if (!j->finish && j->n_tokens >= j->req.max_tokens) j->finish = "length";
    if (j->finish) {
        fti__job_finish_output(j);
        return 1;
    }
    safe = j->text.len - fti__stop_holdback(j);
    safe -= fti_utf8_incomplete_tail((const unsigned char *)j->text.data, safe);
    fti__job_emit(j, safe);
    return 0;
}

static void fti__job_record(fti_server *s, fti__job *j) {
    fti_request_record rec;
    uint64_t now = fti_time_ns();
    if (!s->o.monitor) return;
    memset(&rec, 0, sizeof rec);
    rec.time = fti_time_wall();
    rec.endpoint = j->endpoint;
    rec.status = j->status ? j->status : 500;
    rec.model = j->g ? j->g->id : NULL;
    rec.stream = j->req.stream;
    rec.prompt_tokens = j->prompt_tokens;
    rec.completion_tokens = j->n_tokens;
    rec.ttft_ms = j->t_first_ns ? (double)(j->t_first_ns - j->t_start_ns) / 1e6 : -1;
    rec.latency_ms = (double)(now - j->t_start_ns) / 1e6;
    rec.tokens_per_s = rec.latency_ms > 0 ? j->n_tokens / (rec.latency_ms / 1000.0) : 0;
    rec.retrieval_hits = j->n_chunks;
    rec.prompt_ppl = j->nll_mean >= 0 ? exp(j->nll_mean) : -1;
    rec.byte_fallback = (int)j->byte_fallback;
    rec.has_buckets = j->has_buckets;
    memcpy(rec.tok_buckets, j->buckets, sizeof rec.tok_buckets);
    rec.finish_reason = j->finish;
    fti_monitor_record(s->o.monitor, &rec);
}

/* --- the scheduler thread ----------------------------------------------------------------------- */

static void *fti__sched_main(void *arg) {
    fti_server *s = (fti_server *)arg;
    size_t cap = (size_t)s->o.max_batch;
    fti__job **batch = (fti__job **)fti_calloc(cap + 1, sizeof *batch);
    fti__job **admit = (fti__job **)fti_calloc(cap + 1, sizeof *admit);
    void **seqs = (void **)fti_calloc(cap + 1, sizeof *seqs);
    fti_gen_token *toks = (fti_gen_token *)fti_calloc(cap + 1, sizeof *toks);
    fti__genref **dead = (fti__genref **)fti_calloc(cap * 2 + 2, sizeof *dead);
    size_t n_batch = 0;
    if (!batch || !admit || !seqs || !toks || !dead) {
        pthread_mutex_lock(&s->mu);
        s->sched_stop = 2; /* the I/O loop answers 503 from now on */
        pthread_mutex_unlock(&s->mu);
        fti_free(batch);
        fti_free(admit);
        fti_free(seqs);
        fti_free(toks);
        fti_free(dead);
        return NULL;
    }
    pthread_mutex_lock(&s->mu);
    for (;;) {
        size_t n_admit = 0, i, n_dead = 0, b0;
        while (!s->sched_stop && !s->qhead && n_batch == 0) pthread_cond_wait(&s->cv, &s->mu);
        if (s->sched_stop && !s->qhead && n_batch == 0) break;
        while (s->qhead && n_batch + n_admit < cap) {
            fti__job *j = s->qhead;
            s->qhead = j->qnext;
            if (!s->qhead) s->qtail = NULL;
            s->n_queued--;
            j->g = s->cur;
            s->cur->refs++;
            admit[n_admit++] = j;
        }
        pthread_mutex_unlock(&s->mu);

        /* start the admitted sequences (tokenize + prefill) outside the lock */
        for (i = 0; i < n_admit; i++) {
            fti__job *j = admit[i];
            fti_gen_params p;
            fti_gen_prompt_info info;
            fti_error err;
            fti_result r;
            int cancelled;
            pthread_mutex_lock(&s->mu);
            cancelled = j->cancelled;
            pthread_mutex_unlock(&s->mu);
            memset(&info, 0, sizeof info);
            info.nll_mean = -1;
            fti_error_clear(&err);
            if (cancelled) {
                r = FTI_ERR_CANCELLED;
            } else {
                memset(&p, 0, sizeof p);
                p.max_tokens = j->req.max_tokens;
                p.temperature = j->req.temperature;
                p.top_p = j->req.top_p;
                p.top_k = j->req.top_k;
                p.seed = j->req.has_seed ? j->req.seed : fti_hash64(j->id, strlen(j->id), 0);
                p.use_retrieval = j->req.use_retrieval;
                r = j->g->gen.seq_start(j->g->gen.user, j->req.prompt, j->req.prompt_len, &p,
                                        &j->seq, &info, &err);
            }
            pthread_mutex_lock(&s->mu);
            if (r == FTI_OK) {
                const fti_drift_ref *ref = s->o.monitor ? fti_monitor_ref(s->o.monitor) : NULL;
                j->status = 200;
                j->state = FTI__JOB_ACTIVE;
                j->prompt_tokens = (int)info.n_tokens;
                j->byte_fallback = info.n_byte_fallback;
                j->nll_mean = info.nll_mean;
                j->n_chunks = info.n_chunks;
                if (info.chunks_json) j->chunks_json = fti_strdup(info.chunks_json);
                if (ref && ref->bucket_of && info.ids) {
                    fti_drift_bucketize(ref, info.ids, info.n_tokens, j->buckets);
                    j->has_buckets = 1;
                }
                if (j->req.stream) {
                    fti_api_result res = fti__job_result(j, "", 0);
                    if (j->req.kind == FTI_API_CHAT)
                        fti_api_write_chunk(&j->out, j->req.kind, &res, FTI_API_CHUNK_FIRST);
                }
                batch[n_batch++] = j;
                s->n_active++;
            } else {
                fti_buf eb;
                memset(&eb, 0, sizeof eb);
                j->status = r == FTI_ERR_LIMIT || r == FTI_ERR_INVALID ? 400 : 500;
                fti_api_write_error(&eb, err.msg[0] ? err.msg : fti_result_str(r),
                                    j->status == 400 ? "invalid_request_error" : "server_error",
                                    r == FTI_ERR_LIMIT ? "max_tokens" : NULL,
                                    r == FTI_ERR_LIMIT ? "context_length_exceeded" : NULL);
                fti_buf_append(&j->out, eb.data ? eb.data : "", eb.len);
                fti_buf_free(&eb);
                j->state = FTI__JOB_DONE;
                fti__job_record(s, j);
                {
                    fti__genref *d = fti__gen_unref(j->g);
                    if (d) dead[n_dead++] = d;
                }
                fti__wake_io(s);
            }
            pthread_mutex_unlock(&s->mu);
        }
        for (i = 0; i < n_dead; i++) fti__gen_release(dead[i]);
        n_dead = 0;

        /* one step per generator group (normally one group; two while a swap drains) */
        b0 = 0;
        while (b0 < n_batch) {
            fti__genref *g = batch[b0]->g;
            size_t n = 0, k;
            fti_error err;
            fti_result r;
            /* gather this generator's sequences to the front of batch[b0..] */
            for (k = b0; k < n_batch; k++)
                if (batch[k]->g == g) {
                    fti__job *t = batch[b0 + n];
                    batch[b0 + n] = batch[k];
                    batch[k] = t;
                    n++;
                }
            for (k = 0; k < n; k++) {
                seqs[k] = batch[b0 + k]->seq;
                memset(&toks[k], 0, sizeof toks[k]);
            }
            fti_error_clear(&err);
            r = g->gen.step(g->gen.user, seqs, n, toks, &err);
            pthread_mutex_lock(&s->mu);
            s->st.steps++;
            s->st.batch_tokens += n;
            for (k = 0; k < n; k++) {
                fti__job *j = batch[b0 + k];
                int done;
                if (r != FTI_OK) {
                    fti_buf eb;
                    memset(&eb, 0, sizeof eb);
                    fti_api_write_error(&eb, err.msg[0] ? err.msg : fti_result_str(r),
                                        "server_error", NULL, NULL);
                    j->finish = "error";
                    if (j->req.stream) {
                        fti_buf_puts(&j->out, "data: ");
                        fti_buf_append(&j->out, eb.data ? eb.data : "", eb.len);
                        fti_buf_puts(&j->out, "\n\n");
                        fti_api_write_done(&j->out);
                    } else {
                        j->status = 500;
                        j->out.len = 0;
                        fti_buf_append(&j->out, eb.data ? eb.data : "", eb.len);
                    }
                    fti_buf_free(&eb);
                    done = 1;
                } else {
                    done = fti__job_token(j, &toks[k]) || j->cancelled;
                    s->st.tokens++;
                }
                if (done) j->ended = 1;
            }
            if (s->o.monitor && r == FTI_OK) fti_monitor_tokens(s->o.monitor, n);
            fti__wake_io(s);
            pthread_mutex_unlock(&s->mu);
            b0 += n;
        }
        /* retire finished sequences */
        {
            size_t w = 0, k;
            for (k = 0; k < n_batch; k++) {
                fti__job *j = batch[k];
                if (!j->ended) {
                    batch[w++] = j;
                    continue;
                }
                j->g->gen.seq_end(j->g->gen.user, j->seq);
                pthread_mutex_lock(&s->mu);
                j->seq = NULL;
                j->state = FTI__JOB_DONE;
                fti__job_record(s, j);
                s->n_active--;
                {
                    fti__genref *d = fti__gen_unref(j->g);
                    if (d) dead[n_dead++] = d;
                }
                fti__wake_io(s);
                pthread_mutex_unlock(&s->mu);
            }
            n_batch = w;
            for (k = 0; k < n_dead; k++) fti__gen_release(dead[k]);
        }
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    fti_free(batch);
    fti_free(admit);
    fti_free(seqs);
    fti_free(toks);
    fti_free(dead);
    return NULL;
}

/* --- connections (I/O thread) ------------------------------------------------------------------ */

static void fti__conn_close(fti_server *s, int idx) {
    fti__conn *c = s->conns[idx];
    if (c->job) {
        pthread_mutex_lock(&s->mu);
        c->job->conn = NULL;
        c->job->cancelled = 1;
        pthread_mutex_unlock(&s->mu);
        c->job = NULL;
    }
    close(c->fd);
    fti_buf_free(&c->in);
    fti_buf_free(&c->out);
    fti_buf_free(&c->chunked_body);
    fti_free(c->head);
    fti_free(c);
    s->conns[idx] = s->conns[--s->n_conns];
}

static void fti__conn_flush(fti_server *s, fti__conn *c) {
    (void)s;
    while (c->out_off < c->out.len) {
        ssize_t w = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
            c->t_write_ms = fti__now_ms();
        } else {
            if (w < 0 && errno == EINTR) continue;
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            c->phase = FTI__C_CLOSING;
            c->close_after = 1;
            c->out_off = c->out.len = 0;
            c->peer_eof = 1;
            return;
        }
    }
    c->out_off = c->out.len = 0;
}

static void fti__send_503_and_close(int fd) {
    static const char msg[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
        "{\"error\":{\"message\":\"server busy: too many connections\",\"type\":\"server_error\","
        "\"param\":null}}";
    ssize_t w = send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void fti__metrics_text(fti_server *s, fti_buf *b) {
    if (s->o.monitor) {
        fti_monitor_render(s->o.monitor, b);
    } else {
        fti_buf_printf(b, "# TYPE fti_requests_total counter\nfti_requests_total %llu\n"
                          "# TYPE fti_active_sequences gauge\nfti_active_sequences %d\n"
                          "# TYPE fti_queue_depth gauge\nfti_queue_depth %d\n",
                       (unsigned long long)s->st.requests, s->n_active, s->n_queued);
    }
}

/* Handles one complete request. Returns with c->phase BUSY (a job runs), HEAD or CLOSING. */
static void fti__dispatch(fti_server *s, fti__conn *c, const char *body, size_t body_len) {
    const unsigned char *base = (const unsigned char *)c->in.data;
    const char *m = (const char *)base + c->head->method.off;
    size_t ml = c->head->method.len, tl = c->head->target.len, q;
    const char *t = (const char *)base + c->head->target.off;
    int is_get = ml == 3 && memcmp(m, "GET", 3) == 0;
    int is_post = ml == 4 && memcmp(m, "POST", 4) == 0;
    char path[64];
    fti_buf b;
    memset(&b, 0, sizeof b);
    for (q = 0; q < tl && t[q] != '?'; q++) {
    }
    if (q >= sizeof path) q = sizeof path - 1; /* long paths are 404 anyway */
    memcpy(path, t, q);
    path[q] = 0;
    if (!c->head->keep_alive) c->close_after = 1;

    if (strcmp(path, "/v1/completions") == 0 || strcmp(path, "/v1/chat/completions") == 0) {
        fti_api_kind kind = path[4] == 'c' && path[5] == 'h' ? FTI_API_CHAT : FTI_API_COMPLETION;
        fti__job *j;
        fti_error err;
        const char *param = NULL;
        int n_ctx, full;
        const char *ep = kind == FTI_API_CHAT ? "/v1/chat/completions" : "/v1/completions";
        if (!is_post) {
            fti__respond_error(s, c, 405, "use POST", NULL, NULL);
            if (s->o.monitor) fti_monitor_count(s->o.monitor, ep, 405);
            return;
        }
        pthread_mutex_lock(&s->mu);
        n_ctx = s->cur->n_ctx;
        full = s->n_queued >= s->o.max_queue || s->sched_stop;
        pthread_mutex_unlock(&s->mu);
        if (full) {
            s->st.rejected++;
            fti__respond_error(s, c, 503, "server busy: the request queue is full",
                               "server_error", NULL);
            if (s->o.monitor) fti_monitor_reject(s->o.monitor, "queue");
            return;
        }
        j = (fti__job *)fti_calloc(1, sizeof *j);
        if (!j) {
            fti__respond_error(s, c, 500, "out of memory", "server_error", NULL);
            return;
        }
        fti_error_clear(&err);
        if (fti_api_parse_completion(kind, body, body_len, n_ctx, &j->req, &param, &err) !=
            FTI_OK) {
            fti__respond_error(s, c, 400, err.msg, "invalid_request_error", param);
            if (s->o.monitor) fti_monitor_count(s->o.monitor, ep, 400);
            fti_free(j);
            return;
        }
        j->endpoint = ep;
        j->conn = c;
        j->t_start_ns = fti_time_ns();
        j->created = (int64_t)fti_time_wall();
        j->nll_mean = -1;
        pthread_mutex_lock(&s->mu);
        s->job_counter++;
        snprintf(j->id, sizeof j->id, "%s-%08llx%04llx", kind == FTI_API_CHAT ? "chatcmpl" : "cmpl",
                 (unsigned long long)(fti_hash64(&j->t_start_ns, 8, s->job_counter) & 0xffffffffu),
                 (unsigned long long)(s->job_counter & 0xffff));
        j->next = s->jobs;
        if (s->jobs) s->jobs->prev = j;
        s->jobs = j;
        if (s->qtail) s->qtail->qnext = j;
        else s->qhead = j;
        s->qtail = j;
        s->n_queued++;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        c->job = j;
        c->phase = FTI__C_BUSY;
        return;
    }
    if (!is_get && !(ml == 4 && memcmp(m, "HEAD", 4) == 0)) {
        if (strcmp(path, "/") == 0 || strcmp(path, "/health") == 0 ||
            strcmp(path, "/metrics") == 0 || strcmp(path, "/v1/models") == 0) {
            fti__respond_error(s, c, 405, "method not allowed", NULL, NULL);
        } else {
            fti__respond_error(s, c, 404, "not found", NULL, NULL);
        }
        return;
    }
    if (strcmp(path, "/health") == 0) {
        fti_jw w;
        pthread_mutex_lock(&s->mu);
        fti_jw_init(&w, &b, 0);
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "status");
        fti_jw_str(&w, FTI__STOPPING(s) ? "stopping" : "ok");
        fti_jw_key(&w, "model");
        fti_jw_str(&w, s->cur->id);
        fti_jw_key(&w, "active");
        fti_jw_int(&w, s->n_active);
        fti_jw_key(&w, "queued");
        fti_jw_int(&w, s->n_queued);
        fti_jw_obj_end(&w);
        pthread_mutex_unlock(&s->mu);
        fti__respond(s, c, 200, "application/json", b.data, b.len, NULL);
    } else if (strcmp(path, "/v1/models") == 0) {
        fti_jw w;
        pthread_mutex_lock(&s->mu);
        fti_jw_init(&w, &b, 0);
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "object");
        fti_jw_str(&w, "list");
        fti_jw_key(&w, "data");
        fti_jw_arr_begin(&w);
        fti_jw_obj_begin(&w);
        fti_jw_key(&w, "id");
        fti_jw_str(&w, s->cur->id);
        fti_jw_key(&w, "object");
        fti_jw_str(&w, "model");
        fti_jw_key(&w, "created");
        fti_jw_int(&w, 0);
        fti_jw_key(&w, "owned_by");
        fti_jw_str(&w, "fti");
        fti_jw_key(&w, "context_length");
        fti_jw_int(&w, s->cur->n_ctx);
        fti_jw_obj_end(&w);
        fti_jw_arr_end(&w);
        fti_jw_obj_end(&w);
        pthread_mutex_unlock(&s->mu);
        fti__respond(s, c, 200, "application/json", b.data, b.len, NULL);
    } else if (strcmp(path, "/metrics") == 0) {
        pthread_mutex_lock(&s->mu);
        if (s->o.monitor) fti_monitor_set_load(s->o.monitor, s->n_queued, s->n_active, s->n_conns);
        pthread_mutex_unlock(&s->mu);
        fti__metrics_text(s, &b);
        fti__respond(s, c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "",
                     b.len, NULL);
    } else if (strcmp(path, "/") == 0 && !s->o.no_dashboard) {
        fti__respond(s, c, 200, "text/html; charset=utf-8", fti__dashboard_html,
                     sizeof fti__dashboard_html - 1, NULL);
    } else {
        fti__respond_error(s, c, 404, "not found", NULL, NULL);
    }
    if (b.oom) c->close_after = 1;
    if (s->o.monitor) fti_monitor_count(s->o.monitor, path[0] && strlen(path) < 32 &&
                                        (strcmp(path, "/") == 0 || strcmp(path, "/health") == 0 ||
                                         strcmp(path, "/metrics") == 0 ||
                                         strcmp(path, "/v1/models") == 0) ? path : "other",
                                        c->out.len >= 12 ? atoi(c->out.data + 9) : 0);
    if (ml == 4 && memcmp(m, "HEAD", 4) == 0) {
        /* HEAD: drop the body we just appended (Content-Length stays) */
        const char *e = strstr(c->out.data, "\r\n\r\n");
        if (e) c->out.len = (size_t)(e - c->out.data) + 4;
    }
    s->st.requests++;
    fti_buf_free(&b);
}

/* Reads what the socket has; processes complete requests. */
static void fti__conn_process(fti_server *s, fti__conn *c) {
    uint64_t now = fti__now_ms();
    for (;;) {
        if (c->phase == FTI__C_HEAD) {
            long r;
            if (c->in.len == 0) return;
            if (!c->parse_pending) return; /* no new line end: nothing new to parse */
            c->parse_pending = 0;
            r = fti_http_parse_head((const unsigned char *)c->in.data, c->in.len, &s->lim, c->head);
            if (r == 0) return;
            if (r < 0) {
                fti__respond_error(s, c, (int)-r, c->head->error ? c->head->error : "bad request",
                                   "invalid_request_error", NULL);
                if (s->o.monitor) fti_monitor_count(s->o.monitor, "malformed", (int)-r);
                c->phase = FTI__C_CLOSING;
                return;
            }
            c->head_len = r;
            c->phase = FTI__C_BODY;
            c->t_body_ms = now;
            memset(&c->ch, 0, sizeof c->ch);
            c->chunked_body.len = 0;
            c->sent_continue = 0;
        }
        if (c->phase == FTI__C_BODY) {
            const char *body;
            size_t body_len, consumed;
            if (c->head->chunked) {
                long b = fti_http_chunked_feed(&c->ch, (const unsigned char *)c->in.data + c->head_len,
                                               c->in.len - (size_t)c->head_len, &s->lim,
                                               &c->chunked_body);
                if (b < 0) {
                    fti__respond_error(s, c, (int)-b, "bad chunked body", "invalid_request_error",
                                       NULL);
                    c->phase = FTI__C_CLOSING;
                    return;
                }
                if (b == 0) {
                    if (c->head->expect_continue && !c->sent_continue) {
                        fti_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
                        c->sent_continue = 1;
                    }
                    return;
                }
                body = c->chunked_body.data ? c->chunked_body.data : "";
                body_len = c->chunked_body.len;
                consumed = (size_t)c->head_len + (size_t)b;
            } else {
                if ((uint64_t)(c->in.len - (size_t)c->head_len) < c->head->content_length) {
                    if (c->head->expect_continue && !c->sent_continue) {
                        fti_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
                        c->sent_continue = 1;
                    }
                    return;
                }
                body = c->in.data + c->head_len;
                body_len = (size_t)c->head->content_length;
                consumed = (size_t)c->head_len + body_len;
            }
            fti__dispatch(s, c, body, body_len);
            /* the request's bytes are done with (the job copied what it needs) */
            memmove(c->in.data, c->in.data + consumed, c->in.len - consumed);
            c->in.len -= consumed;
            c->scanned = 0;
            c->parse_pending = c->in.len > 0;
            c->first_request = 0;
            c->t_head_ms = now;
            c->t_idle_ms = now;
            if (c->phase == FTI__C_BUSY) return;
            if (c->phase == FTI__C_BODY) c->phase = FTI__C_HEAD;
            if (c->close_after) {
                c->phase = FTI__C_CLOSING;
                return;
            }
            continue;
        }
        return;
    }
}

/* Moves job output to the connection; finishes the job when done. mu held. */
static void fti__conn_collect(fti_server *s, fti__conn *c) {
    fti__job *j = c->job;
    if (!j) return;
    if (j->status == 200 && j->req.stream) {
        if (!j->http_started) {
            j->http_started = 1;
            if (c->head->version_minor == 0) c->close_after = 1;
            fti_buf_printf(&c->out,
                           "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                           "Cache-Control: no-cache\r\n%s%s\r\n",
                           c->head->version_minor ? "Transfer-Encoding: chunked\r\n" : "",
                           c->close_after ? "Connection: close\r\n" : "");
        }
        if (j->out.len) {
            if (c->head->version_minor) fti_buf_printf(&c->out, "%lx\r\n", (unsigned long)j->out.len);
            fti_buf_append(&c->out, j->out.data, j->out.len);
            if (c->head->version_minor) fti_buf_puts(&c->out, "\r\n");
            j->out.len = 0;
        }
        if (j->state == FTI__JOB_DONE && c->head->version_minor) fti_buf_puts(&c->out, "0\r\n\r\n");
    } else if (j->state == FTI__JOB_DONE) {
        int status = j->status ? j->status : 500;
        if (status == 200 && j->finish && strcmp(j->finish, "error") == 0) status = 500;
        fti__respond(s, c, status, "application/json", j->out.data ? j->out.data : "", j->out.len,
                     NULL);
        j->out.len = 0;
    }
    if (j->state == FTI__JOB_DONE) {
        s->st.requests++;
        c->job = NULL;
        j->conn = NULL;
        c->phase = FTI__STOPPING(s) || c->close_after ? FTI__C_CLOSING : FTI__C_HEAD;
        c->t_idle_ms = c->t_head_ms = fti__now_ms();
    }
}

/* Frees finished jobs nobody waits for. mu held. */
static void fti__reap_jobs(fti_server *s) {
    fti__job *j = s->jobs, *nx;
    for (; j; j = nx) {
        nx = j->next;
        if (j->state == FTI__JOB_DONE && j->conn == NULL) {
            fti__job_unlink(s, j);
            fti__job_free(j);
        }
    }
}

static void fti__accept(fti_server *s) {
    for (;;) {
        int fd = accept(s->listen_fd, NULL, NULL), one = 1;
        fti__conn *c;
        if (fd < 0) {
            if (errno == EINTR) continue;
            if (errno == EMFILE || errno == ENFILE) {
                /* out of descriptors: use the reserve one to accept and refuse, so the kernel's
                 * queue does not fill with clients that never hear back */
                s->st.accept_errors++;
                if (s->reserve_fd >= 0) {
                    close(s->reserve_fd);
                    s->reserve_fd = -1;
                    fd = accept(s->listen_fd, NULL, NULL);
                    if (fd >= 0) fti__send_503_and_close(fd);
                    s->reserve_fd = open("/dev/null", O_RDONLY);
                }
                s->accept_pause_until_ms = fti__now_ms() + 50;
                fti__srv_log(s, FTI_LOG_WARN, "accept: out of file descriptors");
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED) {
                s->st.accept_errors++;
                s->accept_pause_until_ms = fti__now_ms() + 50;
            }
            return;
        }
        if (s->n_conns >= s->o.max_conns || FTI__STOPPING(s)) {
            s->st.rejected++;
            if (s->o.monitor) fti_monitor_reject(s->o.monitor, "conn_cap");
            fti__send_503_and_close(fd);
            continue;
        }
        c = (fti__conn *)fti_calloc(1, sizeof *c);
        if (c) c->head = (fti_http_head *)fti_malloc(sizeof *c->head);
        if (!c || !c->head || fti__set_nonblock(fd) != 0) {
            if (c) fti_free(c->head);
            fti_free(c);
            fti__send_503_and_close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        memset(c->head, 0, sizeof *c->head);
        c->fd = fd;
        c->first_request = 1;
        c->t_head_ms = c->t_idle_ms = c->t_write_ms = fti__now_ms();
        s->conns[s->n_conns++] = c;
    }
}

static void fti__conn_read(fti_server *s, fti__conn *c) {
    size_t cap = s->lim.max_head + s->lim.max_body * 2 + FTI__IN_SLACK;
    for (;;) {
        ssize_t n;
        size_t i;
        if (c->phase == FTI__C_LINGER) {
            char junk[4096];
            n = recv(c->fd, junk, sizeof junk, 0);
            if (n > 0) continue;
            if (n == 0) c->peer_eof = 1;
            return;
        }
        if (c->phase != FTI__C_HEAD && c->phase != FTI__C_BODY) return;
        if (c->in.len >= cap) {
            fti__respond_error(s, c, 413, "request too large", NULL, NULL);
            c->phase = FTI__C_CLOSING;
            return;
        }
        if (!fti_buf_reserve(&c->in, 16384)) {
            c->phase = FTI__C_CLOSING;
            c->close_after = 1;
            return;
        }
        n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len - 1, 0);
        if (n > 0) {
            if (c->in.len == 0 && c->phase == FTI__C_HEAD && !c->first_request)
                c->t_head_ms = fti__now_ms(); /* the header deadline starts at its first byte */
            c->in.len += (size_t)n;
            c->in.data[c->in.len] = 0;
            for (i = c->scanned; i < c->in.len; i++)
                if (c->in.data[i] == '\n') {
                    c->parse_pending = 1;
                    break;
                }
            c->scanned = c->in.len;
            if (c->in.len > s->lim.max_request_line) c->parse_pending = 1;
            continue;
        }
        if (n == 0) {
            c->peer_eof = 1;
            return;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            c->peer_eof = 1;
            c->close_after = 1;
        }
        return;
    }
}

static void fti__conn_timeouts(fti_server *s, fti__conn *c, uint64_t now) {
    if (c->phase == FTI__C_HEAD) {
        if (c->in.len > 0 || c->first_request) {
            if (fti__since(now, c->t_head_ms) >= (uint64_t)s->o.header_timeout_ms) {
                if (c->in.len > 0)
                    fti__respond_error(s, c, 408, "request header timeout", NULL, NULL);
                c->close_after = 1;
                c->phase = FTI__C_CLOSING;
            }
        } else if (fti__since(now, c->t_idle_ms) >= (uint64_t)s->o.idle_timeout_ms) {
            c->close_after = 1;
            c->phase = FTI__C_CLOSING;
        }
    } else if (c->phase == FTI__C_BODY) {
        if (fti__since(now, c->t_body_ms) >= (uint64_t)s->o.body_timeout_ms) {
            fti__respond_error(s, c, 408, "request body timeout", NULL, NULL);
            c->phase = FTI__C_CLOSING;
        }
    }
    if (c->out.len > c->out_off && fti__since(now, c->t_write_ms) >= (uint64_t)s->o.body_timeout_ms) {
        c->out.len = c->out_off = 0; /* a client that stopped reading */
        c->phase = FTI__C_CLOSING;
        c->close_after = 1;
        c->peer_eof = 1;
    }
}

static uint64_t fti__conn_deadline(fti_server *s, fti__conn *c) {
    uint64_t d = (uint64_t)-1;
    if (c->phase == FTI__C_HEAD) {
        if (c->in.len > 0 || c->first_request) d = c->t_head_ms + (uint64_t)s->o.header_timeout_ms;
        else d = c->t_idle_ms + (uint64_t)s->o.idle_timeout_ms;
    } else if (c->phase == FTI__C_BODY) {
        d = c->t_body_ms + (uint64_t)s->o.body_timeout_ms;
    } else if (c->phase == FTI__C_LINGER) {
        d = c->t_linger_ms + FTI__LINGER_MS;
    }
    if (c->out.len > c->out_off && c->t_write_ms + (uint64_t)s->o.body_timeout_ms < d)
        d = c->t_write_ms + (uint64_t)s->o.body_timeout_ms;
    return d;
}

/* After I/O: flush, close or linger. Returns 1 if the connection was closed. */
static int fti__conn_after(fti_server *s, int idx, uint64_t now) {
    fti__conn *c = s->conns[idx];
    if (c->out.len > c->out_off) fti__conn_flush(s, c);
    if (c->out.len > c->out_off && c->out.len - c->out_off > s->o.max_output_bytes) {
        c->out.len = c->out_off = 0;
        c->peer_eof = 1;
        c->phase = FTI__C_CLOSING;
    }
    if (c->phase == FTI__C_CLOSING && c->out.len == c->out_off) {
        if (c->peer_eof) {
            fti__conn_close(s, idx);
            return 1;
        }
        /* half-close and drain what the client still sends, so the response is not lost to a
         * reset, then close */
        shutdown(c->fd, SHUT_WR);
        c->phase = FTI__C_LINGER;
        c->t_linger_ms = now;
    }
    if (c->phase == FTI__C_LINGER && (c->peer_eof || fti__since(now, c->t_linger_ms) >= FTI__LINGER_MS)) {
        fti__conn_close(s, idx);
        return 1;
    }
    if (c->peer_eof && c->phase == FTI__C_HEAD && c->out.len == c->out_off) {
        fti__conn_close(s, idx);
        return 1;
    }
    if (c->peer_eof && c->phase == FTI__C_BODY) {
        fti__conn_close(s, idx);
        return 1;
    }
    return 0;
}

FTIDEF fti_result fti_server_create(const fti_server_opts *opts, const fti_gen *gen,
                                    fti_server **out, fti_error *err) {
    fti_server *s;
    struct addrinfo hints, *ai = NULL, *p;
    char port_str[16];
    int fds[2], rc, one = 1;
    if (!out) return fti_error_set(err, FTI_ERR_INVALID, "fti_server_create: no output");
    *out = NULL;
    if (!gen || !gen->seq_start || !gen->step || !gen->seq_end) {
        if (gen && gen->release) gen->release(gen->user);
        return fti_error_set(err, FTI_ERR_INVALID, "fti_server_create: incomplete generator");
    }
    s = (fti_server *)fti_calloc(1, sizeof *s);
    if (!s) {
        if (gen->release) gen->release(gen->user);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    s->listen_fd = s->wake_rd = s->wake_wr = s->reserve_fd = -1;
    s->cur = fti__gen_wrap(gen);
    if (!s->cur) {
        if (gen->release) gen->release(gen->user);
        fti_free(s);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    if (opts) s->o = *opts;
    snprintf(s->host, sizeof s->host, "%s", s->o.host ? s->o.host : "127.0.0.1");
    s->o.host = s->host;
    if (s->o.max_conns <= 0) s->o.max_conns = 256;
    if (s->o.max_queue <= 0) s->o.max_queue = 64;
    if (s->o.max_batch <= 0) s->o.max_batch = 16;
    if (s->o.header_timeout_ms <= 0) s->o.header_timeout_ms = 10000;
    if (s->o.idle_timeout_ms <= 0) s->o.idle_timeout_ms = 15000;
    if (s->o.body_timeout_ms <= 0) s->o.body_timeout_ms = 30000;
    if (s->o.max_output_bytes == 0) s->o.max_output_bytes = (size_t)8 << 20;
    fti__http_limits_resolve(&s->o.limits, &s->lim);
    if (pthread_mutex_init(&s->mu, NULL) == 0) s->mu_ok = 1;
    if (pthread_cond_init(&s->cv, NULL) == 0) s->cv_ok = 1;
    s->conns = (fti__conn **)fti_calloc((size_t)s->o.max_conns, sizeof *s->conns);
    s->pfds = (struct pollfd *)fti_calloc((size_t)s->o.max_conns + 2, sizeof *s->pfds);
    if (!s->mu_ok || !s->cv_ok || !s->conns || !s->pfds) {
        fti_server_free(s);
        return fti_error_set(err, FTI_ERR_NOMEM, "out of memory");
    }
    if (pipe(fds) != 0) {
        fti_server_free(s);
        return fti_error_set(err, FTI_ERR_IO, "pipe: %s", strerror(errno));
    }
    s->wake_rd = fds[0];
    s->wake_wr = fds[1];
    fti__set_nonblock(s->wake_rd);
    fti__set_nonblock(s->wake_wr);
    s->reserve_fd = open("/dev/null", O_RDONLY);

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(port_str, sizeof port_str, "%d", s->o.port);
    rc = getaddrinfo(s->host, port_str, &hints, &ai);
    if (rc != 0) {
        fti_error_set(err, FTI_ERR_INVALID, "%s:%d: cannot resolve: %s", s->host, s->o.port,
                      gai_strerror(rc));
        fti_server_free(s);
        return FTI_ERR_INVALID;
    }
    for (p = ai; p; p = p->ai_next) {
        int fd = socket(p->ai_family, p->ai_socktype, p->ai_protocol);
        if (fd < 0) continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, p->ai_addr, p->ai_addrlen) == 0 && listen(fd, 128) == 0) {
            s->listen_fd = fd;
            break;
        }
        close(fd);
    }
    if (s->listen_fd < 0) {
        int e = errno;
        freeaddrinfo(ai);
        fti_error_set(err, FTI_ERR_IO, "%s:%d: cannot listen: %s", s->host, s->o.port, strerror(e));
        fti_server_free(s);
        return FTI_ERR_IO;
    }
    freeaddrinfo(ai);
    fti__set_nonblock(s->listen_fd);
    {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(s->listen_fd, (struct sockaddr *)&ss, &sl) == 0) {
            if (ss.ss_family == AF_INET)
                s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            else if (ss.ss_family == AF_INET6)
                s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    if (s->o.monitor) fti_monitor_set_model(s->o.monitor, s->cur->id);
    *out = s;
    return FTI_OK;
}

FTIDEF int fti_server_port(const fti_server *srv) { return srv ? srv->port : 0; }

FTIDEF void fti_server_stop(fti_server *srv) {
    char c = 'S';
    if (!srv) return;
    FTI__STOP_SET(srv);
    if (write(srv->wake_wr, &c, 1) < 0) {
        /* pipe full: the loop is awake anyway and sees stop_flag */
    }
}

FTIDEF fti_result fti_server_set_generator(fti_server *srv, const fti_gen *gen) {
    fti__genref *g, *old;
    if (!srv || !gen || !gen->seq_start || !gen->step || !gen->seq_end) {
        if (gen && gen->release) gen->release(gen->user);
        return FTI_ERR_INVALID;
    }
    g = fti__gen_wrap(gen);
    if (!g) {
        if (gen->release) gen->release(gen->user);
        return FTI_ERR_NOMEM;
    }
    pthread_mutex_lock(&srv->mu);
    old = srv->cur;
    srv->cur = g;
    old = fti__gen_unref(old);
    pthread_mutex_unlock(&srv->mu);
    if (srv->o.monitor) fti_monitor_set_model(srv->o.monitor, g->id);
    fti__srv_log(srv, FTI_LOG_INFO, "switched to model %s", g->id);
    fti__gen_release(old);
    return FTI_OK;
}

FTIDEF fti_result fti_server_run(fti_server *s, fti_error *err) {
    uint64_t drain_deadline = 0;
    int i;
    if (!s) return fti_error_set(err, FTI_ERR_INVALID, "fti_server_run: no server");
    if (pthread_create(&s->sched, NULL, fti__sched_main, s) != 0)
        return fti_error_set(err, FTI_ERR_IO, "cannot start the scheduler thread");
    s->sched_started = 1;
    fti__srv_log(s, FTI_LOG_INFO, "listening on %s:%d", s->host, s->port);
    for (;;) {
        uint64_t now = fti__now_ms(), next = now + 1000;
        int np = 0, timeout, base, stopping = FTI__STOPPING(s);
        int listen_ix = -1;
        if (stopping) {
            int busy = 0;
            if (!drain_deadline) {
                drain_deadline = now + FTI__DRAIN_MS;
                if (s->listen_fd >= 0) {
                    close(s->listen_fd);
                    s->listen_fd = -1;
                }
                fti__srv_log(s, FTI_LOG_INFO, "stopping: finishing in-flight requests");
            }
            for (i = 0; i < s->n_conns; i++) {
                fti__conn *c = s->conns[i];
                if (c->job || c->out.len > c->out_off) busy = 1;
                else if (c->phase == FTI__C_HEAD && c->in.len == 0) {
                    c->close_after = 1;
                    c->phase = FTI__C_CLOSING;
                }
            }
            pthread_mutex_lock(&s->mu);
            if (s->qhead || s->n_active) busy = 1;
            pthread_mutex_unlock(&s->mu);
            if (!busy || now >= drain_deadline) break;
        }
        s->pfds[np].fd = s->wake_rd;
        s->pfds[np].events = POLLIN;
        s->pfds[np].revents = 0;
        np++;
        if (s->listen_fd >= 0 && now >= s->accept_pause_until_ms) {
            listen_ix = np;
            s->pfds[np].fd = s->listen_fd;
            s->pfds[np].events = POLLIN;
            s->pfds[np].revents = 0;
            np++;
        } else if (s->listen_fd >= 0 && s->accept_pause_until_ms < next) {
            next = s->accept_pause_until_ms;
        }
        base = np;
        for (i = 0; i < s->n_conns; i++) {
            fti__conn *c = s->conns[i];
            uint64_t d = fti__conn_deadline(s, c);
            short ev = 0;
            if (c->phase == FTI__C_HEAD || c->phase == FTI__C_BODY || c->phase == FTI__C_LINGER)
                ev |= POLLIN;
            if (c->out.len > c->out_off) ev |= POLLOUT;
            s->pfds[np].fd = c->fd;
            s->pfds[np].events = ev;
            s->pfds[np].revents = 0;
            np++;
            if (d < next) next = d;
        }
        timeout = next > now ? (int)(next - now) : 0;
        if (poll(s->pfds, (nfds_t)np, timeout) < 0 && errno != EINTR) {
            fti_error_set(err, FTI_ERR_IO, "poll: %s", strerror(errno));
            break;
        }
        now = fti__now_ms();
        if (s->pfds[0].revents) {
            char buf[256];
            while (read(s->wake_rd, buf, sizeof buf) > 0) {
            }
        }
        /* job output */
        pthread_mutex_lock(&s->mu);
        s->wake_pending = 0;
        for (i = 0; i < s->n_conns; i++)
            if (s->conns[i]->job) fti__conn_collect(s, s->conns[i]);
        fti__reap_jobs(s);
        pthread_mutex_unlock(&s->mu);
        if (listen_ix >= 0 && (s->pfds[listen_ix].revents & POLLIN)) fti__accept(s);
        /* connections: the pollfd slots match conns[0..base-n) as they were before accept */
        for (i = 0; i < s->n_conns; i++) {
            fti__conn *c = s->conns[i];
            short rev = 0;
            int k = base + i;
            if (k < np && s->pfds[k].fd == c->fd) rev = s->pfds[k].revents;
            if (rev & (POLLIN | POLLHUP | POLLERR)) fti__conn_read(s, c);
            if (c->phase == FTI__C_HEAD || c->phase == FTI__C_BODY) fti__conn_process(s, c);
            fti__conn_timeouts(s, c, now);
        }
        /* pipelined requests whose predecessor just finished */
        for (i = 0; i < s->n_conns; i++) {
            fti__conn *c = s->conns[i];
            if (c->phase == FTI__C_HEAD && c->parse_pending) fti__conn_process(s, c);
        }
        for (i = 0; i < s->n_conns;) {
            if (!fti__conn_after(s, i, now)) i++;
        }
        pthread_mutex_lock(&s->mu);
        s->st.conns = s->n_conns;
        s->st.active = s->n_active;
        s->st.queued = s->n_queued;
        if (s->o.monitor) fti_monitor_set_load(s->o.monitor, s->n_queued, s->n_active, s->n_conns);
        pthread_mutex_unlock(&s->mu);
    }
    /* stop the scheduler: cancel what is left (drain deadline), wait for it */
    pthread_mutex_lock(&s->mu);
    {
        fti__job *j;
        for (j = s->jobs; j; j = j->next) j->cancelled = 1;
    }
    s->sched_stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->sched, NULL);
    s->sched_started = 0;
    for (i = 0; i < s->n_conns; i++) fti__conn_flush(s, s->conns[i]);
    while (s->n_conns > 0) fti__conn_close(s, s->n_conns - 1);
    pthread_mutex_lock(&s->mu);
    {
        /* queued jobs the scheduler never admitted */
        fti__job *j = s->jobs, *nx;
        for (; j; j = nx) {
            nx = j->next;
            if (j->seq && j->g) j->g->gen.seq_end(j->g->gen.user, j->seq);
            j->seq = NULL;
            fti__job_unlink(s, j);
            fti__job_free(j);
        }
        s->qhead = s->qtail = NULL;
        s->n_queued = 0;
    }
    pthread_mutex_unlock(&s->mu);
    if (s->o.monitor) fti_monitor_flush(s->o.monitor);
    fti__srv_log(s, FTI_LOG_INFO, "stopped");
    return err && err->code != FTI_OK ? err->code : FTI_OK;
}

FTIDEF void fti_server_get_stats(fti_server *srv, fti_server_stats *st) {
    if (!st) return;
    memset(st, 0, sizeof *st);
    if (!srv) return;
    pthread_mutex_lock(&srv->mu);
    *st = srv->st;
    st->active = srv->n_active;
    st->queued = srv->n_queued;
    pthread_mutex_unlock(&srv->mu);
}

FTIDEF void fti_server_free(fti_server *s) {
    if (!s) return;
    while (s->n_conns > 0) fti__conn_close(s, s->n_conns - 1);
    if (s->listen_fd >= 0) close(s->listen_fd);
    if (s->wake_rd >= 0) close(s->wake_rd);
    if (s->wake_wr >= 0) close(s->wake_wr);
    if (s->reserve_fd >= 0) close(s->reserve_fd);
    if (s->cur) fti__gen_release(fti__gen_unref(s->cur));
    if (s->cv_ok) pthread_cond_destroy(&s->cv);
    if (s->mu_ok) pthread_mutex_destroy(&s->mu);
    fti_free(s->conns);
    fti_free(s->pfds);
    fti_free(s);
}

#else /* !FTI__SERVER: no threads or no POSIX sockets */

FTIDEF fti_result fti_server_create(const fti_server_opts *opts, const fti_gen *gen,
                                    fti_server **out, fti_error *err) {
    (void)opts;
    if (out) *out = NULL;
    if (gen && gen->release) gen->release(gen->user);
    return fti_error_set(err, FTI_ERR_UNSUPPORTED,
                         "the HTTP server needs threads (built with FTI_NO_THREADS)");
}
FTIDEF int fti_server_port(const fti_server *srv) { (void)srv; return 0; }
FTIDEF fti_result fti_server_run(fti_server *srv, fti_error *err) {
    (void)srv;
    return fti_error_set(err, FTI_ERR_UNSUPPORTED, "the HTTP server needs threads");
}
FTIDEF void fti_server_stop(fti_server *srv) { (void)srv; }
FTIDEF fti_result fti_server_set_generator(fti_server *srv, const fti_gen *gen) {
    (void)srv;
    if (gen && gen->release) gen->release(gen->user);
    return FTI_ERR_UNSUPPORTED;
}
FTIDEF void fti_server_free(fti_server *srv) { (void)srv; }
FTIDEF void fti_server_get_stats(fti_server *srv, fti_server_stats *st) {
    (void)srv;
    if (st) memset(st, 0, sizeof *st);
}

#endif /* FTI__SERVER */

#endif /* FTI_NO_SERVER */
/* ---- end src/10_server.c ---- */

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
